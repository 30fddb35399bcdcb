//! A deterministic generator of synthetic syndication corpora, for tests, benchmarks and the
//! demo. The project ships no publisher text: this is where its test data comes from.
//!
//! The stream mixes wire originals (~3 KB), copies of recent stories carrying the patterns seen
//! on real sites (aggregator headers, font widgets, bylines, attribution swaps, datelines,
//! footers, scraper tags, hard wraps, lost spaces, truncation, light edits, rewritten leads),
//! template look-alikes (a recent story's skeleton with other figures and names, which must not
//! match) and, optionally, invalid records. Each valid record carries its true `cluster`.

use serde_json::json;

/// A small, fast, well-mixed PRNG (SplitMix64); a dependency would buy nothing here.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed ^ 0x5DEE_CE66_D1CE_4E5B)
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: usize) -> usize {
        (((self.next_u64() >> 32) * n as u64) >> 32) as usize
    }
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next_u64() >> 11) as f64 / (1u64 << 53) as f64) < p
    }
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    /// Puts `items` in a random order (Fisher-Yates): the same order for the same seed.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            items.swap(i, self.below(i + 1));
        }
    }
}

const SYLLABLES: &[&str] = &[
    "ba", "ku", "ri", "sta", "mon", "tel", "va", "dor", "en", "is", "ka", "li", "mar", "ne", "qa", "ro", "sen", "tu",
    "zer", "ol", "pan", "gra", "vi", "cho", "lan", "der", "mi", "nos", "ter", "ul", "ya", "zan", "bel", "cor", "fa",
    "gu",
];

const WIRES: &[&str] = &[
    "azertag.az",
    "trend.az",
    "report.az",
    "apa.az",
    "apnews.com",
    "reuters.com",
    "afp.com",
];
const WIRE_NAMES: &[&str] = &["AZERTAC", "Trend", "Report", "APA", "AP", "Reuters", "AFP"];
const SITES: &[&str] = &[
    "news.az",
    "today.az",
    "azernews.az",
    "menafn.com",
    "caspiannews.com",
    "eunewsweek.com",
    "dailyworld.net",
    "metro-times.com",
    "valleyherald.com",
    "regionpost.kz",
    "steppe-wire.uz",
    "baltic-times.ee",
];
const CAPITALS: &[&str] = &[
    "BAKU, Azerbaijan",
    "ASTANA, Kazakhstan",
    "TASHKENT, Uzbekistan",
    "BISHKEK, Kyrgyzstan",
    "TBILISI, Georgia",
];
const MONTHS: &[&str] = &[
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// One generated record.
#[derive(Debug, Clone)]
pub struct Record {
    /// The JSON line (without newline); not valid UTF-8 or JSON for some invalid records.
    pub line: Vec<u8>,
    pub id: String,
    /// True cluster of a valid record; `None` for invalid ones.
    pub cluster: Option<String>,
}

#[derive(Debug, Clone)]
struct StorySeed {
    cluster: String,
    wire: usize,
    paragraphs: Vec<String>,
    dateline: String,
    time: i64,
}

impl StorySeed {
    /// The story's headline, which every copy keeps, a rewritten lead included (as a wire
    /// write-thru does): the first words of its first paragraph. A template look-alike gets its
    /// own from its own first paragraph, so it shares its model's headline when the figures and
    /// names come later in the paragraph, as real recurring formats often do.
    fn headline(&self) -> String {
        let first = self.paragraphs.first().map_or("", String::as_str);
        let words: Vec<&str> = first.split_whitespace().take(HEADLINE_WORDS).collect();
        words.join(" ").trim_end_matches(['.', ',']).to_string()
    }
}

/// Words in a generated headline.
const HEADLINE_WORDS: usize = 8;

/// Infinite iterator of records; see the module documentation.
#[derive(Debug, Clone)]
pub struct Generator {
    rng: Rng,
    vocabulary: Vec<String>,
    names: Vec<String>,
    recent: Vec<StorySeed>,
    next_story: u64,
    next_record: u64,
    with_invalid: bool,
}

/// Start of generated event time: 2024-01-01T00:00:00Z.
const EPOCH: i64 = 1_704_067_200;
/// Event time advances this much per record.
const SECONDS_PER_RECORD: i64 = 7;
/// Copies and look-alikes are made of one of the last this-many stories.
const RECENT_STORIES: usize = 64;

impl Generator {
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let word = |rng: &mut Rng, min: usize| {
            let n = min + rng.below(3);
            (0..n).map(|_| *rng.pick(SYLLABLES)).collect::<String>()
        };
        let vocabulary: Vec<String> = (0..6000).map(|_| word(&mut rng, 1)).collect();
        let names: Vec<String> = (0..800)
            .map(|_| {
                let w = word(&mut rng, 2);
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect())
                    .unwrap_or_default()
            })
            .collect();
        Self {
            rng,
            vocabulary,
            names,
            recent: Vec::new(),
            next_story: 0,
            next_record: 0,
            with_invalid: false,
        }
    }

    /// Mixes in invalid records (about 4 in 100).
    pub fn with_invalid(mut self, on: bool) -> Self {
        self.with_invalid = on;
        self
    }

    fn sentence(&mut self) -> String {
        let len = 12 + self.rng.below(14);
        let mut words = Vec::with_capacity(len);
        for i in 0..len {
            let roll = self.rng.below(100);
            let w = if roll < 8 {
                self.rng.pick(&self.names).clone()
            } else if roll < 12 {
                self.number()
            } else {
                // Zipf-like: common words much more often than rare ones.
                let r = self.rng.below(self.vocabulary.len());
                let r = r * self.rng.below(self.vocabulary.len()) / self.vocabulary.len();
                self.vocabulary[r].clone()
            };
            if i == 0 {
                let mut c = w.chars();
                words.push(
                    c.next()
                        .map(|f| f.to_uppercase().chain(c).collect())
                        .unwrap_or_default(),
                );
            } else {
                words.push(w);
            }
        }
        format!("{}.", words.join(" "))
    }

    fn number(&mut self) -> String {
        match self.rng.below(4) {
            0 => format!("{}", 2 + self.rng.below(98)),
            1 => format!("{}.{}", 1 + self.rng.below(99), self.rng.below(10)),
            2 => format!("{},{:03}", 1 + self.rng.below(99), self.rng.below(1000)),
            _ => format!("20{:02}", 10 + self.rng.below(15)),
        }
    }

    fn paragraph(&mut self) -> String {
        let n = 2 + self.rng.below(3);
        (0..n).map(|_| self.sentence()).collect::<Vec<_>>().join(" ")
    }

    fn new_story(&mut self, time: i64) -> StorySeed {
        let cluster = format!("g{}", self.next_story);
        self.next_story += 1;
        let wire = self.rng.below(WIRES.len());
        let n = 7 + self.rng.below(4);
        let paragraphs = (0..n).map(|_| self.paragraph()).collect();
        let dateline = format!(
            "{}, {} {}.",
            self.rng.pick(CAPITALS),
            self.rng.pick(MONTHS),
            1 + self.rng.below(28)
        );
        StorySeed {
            cluster,
            wire,
            paragraphs,
            dateline,
            time,
        }
    }

    /// The wire original's body.
    fn original_body(&self, story: &StorySeed) -> String {
        let mut paragraphs = story.paragraphs.clone();
        if let Some(first) = paragraphs.first_mut() {
            let trimmed = first.trim_end_matches('.');
            *first = format!("{} {}, {} reports.", story.dateline, trimmed, WIRE_NAMES[story.wire]);
        }
        paragraphs.join("\n\n")
    }

    /// A syndicated copy with a few site transformations.
    fn copy_body(&mut self, story: &StorySeed, site: &str) -> String {
        let agency = WIRE_NAMES[story.wire];
        let site_name = site.split('.').next().unwrap_or(site);
        let mut paragraphs = story.paragraphs.clone();
        // At most one heavy change, so a copy stays a copy.
        match self.rng.below(6) {
            0 => {
                let keep = paragraphs.len() * 3 / 5;
                paragraphs.truncate(keep.max(2));
                if let Some(last) = paragraphs.last_mut() {
                    last.push_str(" ...");
                }
            }
            1 => paragraphs[0] = self.paragraph(),
            2 => {
                let at = 1 + self.rng.below(paragraphs.len() - 1);
                let extra = self.paragraph();
                paragraphs.insert(at, extra);
            }
            _ => {}
        }
        // Light edits: a few words swapped for others.
        for _ in 0..self.rng.below(5) {
            let p = self.rng.below(paragraphs.len());
            let mut words: Vec<String> = paragraphs[p].split(' ').map(str::to_string).collect();
            let w = self.rng.below(words.len());
            words[w] = self.rng.pick(&self.vocabulary).clone();
            paragraphs[p] = words.join(" ");
        }
        let attribution = if self.rng.chance(0.5) {
            format!("{site_name} reports, citing {agency}.")
        } else {
            format!("{agency} reports.")
        };
        if let Some(first) = paragraphs.first_mut() {
            let lead = first.trim_end_matches('.').to_string();
            *first = if self.rng.chance(0.5) {
                format!("{} {lead}, {attribution}", story.dateline)
            } else {
                format!("{lead}, {attribution}")
            };
        }
        let mut body = match self.rng.below(4) {
            0 => format!("+ ↺ − 16 px\n\n{}", paragraphs.join("\n\n")),
            1 => format!("(MENAFN- {agency} News Agency) {}", paragraphs.join("\n")),
            2 => format!("By {agency}\n\n{}", paragraphs.join("\n\n")),
            _ => paragraphs.join("\n\n"),
        };
        if self.rng.chance(0.3) {
            body = hard_wrap(&body, 68 + self.rng.below(8));
        }
        if self.rng.chance(0.3) {
            body = body.replacen(". ", ".", 3);
        }
        match self.rng.below(4) {
            0 => body.push_str(&format!("\n\n{}", capitalize_domain(site))),
            1 => body.push_str(&format!("\n\nFollow us on Twitter @{site_name}")),
            2 => body = format!("[ad_1]\n{body}\n\nSource link"),
            _ => {}
        }
        body
    }

    /// A recent story's skeleton with other figures and names: a different event.
    fn lookalike_body(&mut self, story: &StorySeed) -> String {
        let names: std::collections::HashSet<&str> = self.names.iter().map(String::as_str).collect();
        let mut rng = self.rng.clone();
        let mut out = Vec::new();
        for paragraph in &story.paragraphs {
            let words: Vec<String> = paragraph
                .split(' ')
                .map(|w| {
                    let core = w.trim_end_matches('.');
                    let tail = &w[core.len()..];
                    if core.chars().any(|c| c.is_ascii_digit()) {
                        format!("{}{tail}", 100 + rng.below(9000))
                    } else if names.contains(core) {
                        format!("{}{tail}", rng.pick(&self.names))
                    } else {
                        w.to_string()
                    }
                })
                .collect();
            out.push(words.join(" "));
        }
        self.rng = rng;
        out.join("\n\n")
    }

    fn invalid(&mut self, id: &str) -> Vec<u8> {
        match self.rng.below(6) {
            0 => format!("{{\"id\":\"{id}\",\"source\":\"news.az\",\"body\":").into_bytes(),
            1 => format!("{{\"id\":\"{id}\",\"source\":\"news.az\"}}").into_bytes(),
            2 => format!("{{\"id\":\"{id}\",\"source\":42,\"body\":\"text\"}}").into_bytes(),
            3 => format!(
                "{{\"id\":\"{id}\",\"source\":\"news.az\",\"body\":\"text\",\"published_at\":\"last tuesday\"}}"
            )
            .into_bytes(),
            4 => format!("{{\"id\":\"{id}\",\"source\":\"news.az\",\"body\":\"+ ↺ − 16 px\"}}").into_bytes(),
            _ => {
                let mut line = format!("{{\"id\":\"{id}\",\"source\":\"news.az\",\"body\":\"caf").into_bytes();
                line.extend_from_slice(&[0xC3, 0x28]);
                line.extend_from_slice(b"\"}");
                line
            }
        }
    }
}

fn capitalize_domain(site: &str) -> String {
    let mut c = site.chars();
    c.next()
        .map(|f| f.to_uppercase().chain(c).collect())
        .unwrap_or_default()
}

/// Re-wraps text at `width` columns, as MENAFN pages do.
pub fn hard_wrap(text: &str, width: usize) -> String {
    let mut out = String::with_capacity(text.len() + text.len() / width);
    for (i, paragraph) in text.split("\n\n").enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let mut col = 0;
        for word in paragraph.split(' ') {
            if col > 0 && col + word.len() + 1 > width {
                out.push('\n');
                col = 0;
            } else if col > 0 {
                out.push(' ');
                col += 1;
            }
            out.push_str(word);
            col += word.len();
        }
    }
    out
}

fn timestamp(secs: i64) -> String {
    chrono::DateTime::from_timestamp(secs, 0)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

impl Iterator for Generator {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        let n = self.next_record;
        self.next_record += 1;
        let id = format!("a{n}");
        let time = EPOCH + n as i64 * SECONDS_PER_RECORD;
        if self.with_invalid && self.rng.chance(0.04) {
            let line = self.invalid(&id);
            return Some(Record {
                line,
                id,
                cluster: None,
            });
        }
        let roll = self.rng.below(100);
        let (cluster, source, body, published, title) = if self.recent.is_empty() || roll < 45 {
            let story = self.new_story(time);
            // Sometimes a site's reprint is the first copy seen and the wire arrives later.
            let (source, body) = if self.rng.chance(0.25) {
                let site = *self.rng.pick(SITES);
                (site.to_string(), self.copy_body(&story, site))
            } else {
                (WIRES[story.wire].to_string(), self.original_body(&story))
            };
            let cluster = story.cluster.clone();
            let title = story.headline();
            if self.recent.len() == RECENT_STORIES {
                self.recent.remove(0);
            }
            self.recent.push(story);
            (cluster, source, body, time, title)
        } else if roll < 88 {
            let story = self.recent[self.rng.below(self.recent.len())].clone();
            let wire_copy = self.rng.chance(0.15);
            let (source, body) = if wire_copy {
                (WIRES[story.wire].to_string(), self.original_body(&story))
            } else {
                let site = *self.rng.pick(SITES);
                (site.to_string(), self.copy_body(&story, site))
            };
            let published = story.time + self.rng.below(3600) as i64;
            (story.cluster.clone(), source, body, published, story.headline())
        } else {
            let template = self.recent[self.rng.below(self.recent.len())].clone();
            let mut story = self.new_story(time);
            story.paragraphs = self
                .lookalike_body(&template)
                .split("\n\n")
                .map(str::to_string)
                .collect();
            let body = self.original_body(&story);
            let cluster = story.cluster.clone();
            let source = WIRES[story.wire].to_string();
            let title = story.headline();
            self.recent.push(story);
            if self.recent.len() > RECENT_STORIES {
                self.recent.remove(0);
            }
            (cluster, source, body, time, title)
        };
        let value = json!({
            "id": id,
            "source": source,
            "title": title,
            "url": format!("https://{source}/news/{id}"),
            "published_at": timestamp(published),
            "body": body,
            "cluster": cluster,
        });
        Some(Record {
            line: value.to_string().into_bytes(),
            id,
            cluster: Some(cluster),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_seed_gives_the_same_corpus() {
        let a: Vec<Vec<u8>> = Generator::new(7).take(50).map(|r| r.line).collect();
        let b: Vec<Vec<u8>> = Generator::new(7).take(50).map(|r| r.line).collect();
        let c: Vec<Vec<u8>> = Generator::new(8).take(50).map(|r| r.line).collect();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn articles_are_about_three_kilobytes_and_clusters_repeat() {
        let records: Vec<Record> = Generator::new(1).take(500).collect();
        let avg = records.iter().map(|r| r.line.len()).sum::<usize>() / records.len();
        assert!((2000..4500).contains(&avg), "average record {avg} bytes");
        let clusters: std::collections::HashSet<_> = records.iter().filter_map(|r| r.cluster.clone()).collect();
        assert!(
            clusters.len() < 400 && clusters.len() > 150,
            "{} clusters",
            clusters.len()
        );
    }
}
