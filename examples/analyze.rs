use std::collections::HashMap;
use syndic::fingerprint::*;
use syndic::normalize::Normalizer;
use syndic::rules::BoilerplateRules;
fn main() {
    let dir = std::env::args().nth(1).unwrap();
    let shingle: usize = std::env::args().nth(2).unwrap_or("1".into()).parse().unwrap();
    let sk: usize = std::env::args().nth(3).unwrap_or("3".into()).parse().unwrap();
    let docs = std::fs::read_to_string(format!("{dir}/docs.jsonl")).unwrap();
    let n = Normalizer::new(BoilerplateRules::builtin());
    let f = Fingerprinter::new(FingerprintConfig { simhash_shingle: shingle, sketch_shingle: sk, sketch_size: 128 });
    let mut fps = HashMap::new();
    for l in docs.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        let norm = n.normalize(v["body"].as_str().unwrap());
        if std::env::var("SHOW").map(|s| s == id).unwrap_or(false) { println!("{norm}"); }
        fps.insert(id, f.fingerprint(&norm));
    }
    let pairs = std::fs::read_to_string(format!("{dir}/pairs.jsonl")).unwrap();
    let mut by_label: HashMap<String, Vec<(u32, f64, f64, Option<f64>, String)>> = HashMap::new();
    for l in pairs.lines() {
        let v: serde_json::Value = serde_json::from_str(l).unwrap();
        let (a, b) = (v["a"].as_str().unwrap(), v["b"].as_str().unwrap());
        let (fa, fb) = (&fps[a], &fps[b]);
        let s = fa.sketch.similarity(&fb.sketch);
        by_label.entry(v["label"].as_str().unwrap().to_string()).or_default().push((hamming(fa.simhash, fb.simhash), s.containment, s.jaccard, s.numbers, format!("{a}-{b}")));
    }
    for (label, mut v) in by_label {
        v.sort_by(|x, y| x.0.cmp(&y.0));
        let hs: Vec<u32> = v.iter().map(|x| x.0).collect();
        println!("{label} n={} hamming min={} p10={} p50={} max={}", v.len(), hs[0], hs[hs.len() / 10], hs[hs.len() / 2], hs[hs.len() - 1]);
        if label == "duplicate" || label == "template_negative" || label == "same_event" {
            let show = if label == "duplicate" { v.len() } else { 12.min(v.len()) };
            for x in v.iter().take(show) { println!("   h={} c={:.2} j={:.2} num={:?} {}", x.0, x.1, x.2, x.3.map(|n| (n * 100.0).round() / 100.0), x.4); }
            let mut byc: Vec<_> = v.clone(); byc.sort_by(|x, y| y.1.partial_cmp(&x.1).unwrap());
            if label != "duplicate" { for x in byc.iter().take(8) { println!("   [top-c] h={} c={:.2} j={:.2} num={:?} {}", x.0, x.1, x.2, x.3, x.4); } }
        }
    }
}
