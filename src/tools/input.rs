//! Articles from files, for `syndic dedup` and `syndic replay --input`: one JSON object per
//! line, from standard input, files, or directories (their files in name order), each plain,
//! gzip or zstd compressed, told by its first bytes rather than its name. Records are given in
//! the order named, with their file and line number, and the bytes read so far for progress.

use std::io::{BufRead, BufReader, Read};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum InputError {
    #[error("cannot read input {path}: {source} (check the path and its permissions)")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("input directory {0} holds no files: give files, or a directory of JSONL files")]
    EmptyDirectory(String),
    #[error("cannot start a thread to read or prepare the input: {0} (check the process's thread limit, or give --threads 1)")]
    Thread(#[source] std::io::Error),
}

/// One input as named on the command line, directories expanded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Input {
    Stdin,
    File(PathBuf),
}

impl Input {
    pub fn name(&self) -> String {
        match self {
            Input::Stdin => "-".to_string(),
            Input::File(path) => path.display().to_string(),
        }
    }
}

/// The inputs named, `-` for standard input, each directory replaced by its files (not its
/// subdirectories, nor hidden files) in name order.
pub fn expand(names: &[String]) -> Result<Vec<Input>, InputError> {
    let mut inputs = Vec::new();
    for name in names {
        if name == "-" {
            inputs.push(Input::Stdin);
            continue;
        }
        let path = PathBuf::from(name);
        let io = |source| InputError::Io {
            path: name.clone(),
            source,
        };
        if path.is_dir() {
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&path).map_err(io)? {
                let entry = entry.map_err(io)?;
                let hidden = entry.file_name().to_string_lossy().starts_with('.');
                if !hidden && entry.file_type().map_err(io)?.is_file() {
                    files.push(entry.path());
                }
            }
            if files.is_empty() {
                return Err(InputError::EmptyDirectory(name.clone()));
            }
            files.sort();
            inputs.extend(files.into_iter().map(Input::File));
        } else {
            inputs.push(Input::File(path));
        }
    }
    Ok(inputs)
}

/// The inputs' size on disk (compressed), when all are files: what progress counts against.
pub fn total_bytes(inputs: &[Input]) -> Option<u64> {
    inputs
        .iter()
        .map(|input| match input {
            Input::Stdin => None,
            Input::File(path) => std::fs::metadata(path).ok().map(|m| m.len()),
        })
        .sum()
}

/// Counts the bytes read from the underlying file (before decompression).
struct Counting<R> {
    inner: R,
    read: Arc<AtomicU64>,
}

impl<R: Read> Read for Counting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Opens one input, decompressing gzip (1f 8b) or zstd (28 b5 2f fd) by its first bytes.
pub fn open(input: &Input, read: &Arc<AtomicU64>) -> Result<Box<dyn BufRead>, InputError> {
    let name = input.name();
    let io = |source| InputError::Io {
        path: name.clone(),
        source,
    };
    let raw: Box<dyn Read> = match input {
        Input::Stdin => Box::new(std::io::stdin()),
        Input::File(path) => Box::new(std::fs::File::open(path).map_err(io)?),
    };
    let mut buffered = BufReader::with_capacity(
        1 << 20,
        Counting {
            inner: raw,
            read: read.clone(),
        },
    );
    let head = buffered.fill_buf().map_err(io)?;
    Ok(if head.starts_with(&[0x1f, 0x8b]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            flate2::bufread::MultiGzDecoder::new(buffered),
        ))
    } else if head.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        Box::new(BufReader::with_capacity(
            1 << 20,
            zstd::stream::read::Decoder::with_buffer(buffered).map_err(io)?,
        ))
    } else {
        Box::new(buffered)
    })
}

/// A line of the inputs, without its line ending.
pub struct Line<'a> {
    /// The input's name and the line's number there (from 1).
    pub input: &'a str,
    pub line_no: u64,
    pub record: &'a [u8],
}

/// The lines of the inputs in order, pulled one at a time: each with its input's name, its line
/// number there (from 1), and without its line ending. Blank lines are lines too: each line is
/// one record and gets one decision (a blank one `invalid`), so decisions and lines pair up.
pub struct Lines {
    inputs: Vec<Input>,
    next_input: usize,
    /// The input being read, by name.
    reading: Option<(String, Box<dyn BufRead>)>,
    line_no: u64,
    line: Vec<u8>,
    /// The bytes taken from disk so far.
    read: Arc<AtomicU64>,
}

impl Lines {
    pub fn new(inputs: Vec<Input>, read: Arc<AtomicU64>) -> Self {
        Self {
            inputs,
            next_input: 0,
            reading: None,
            line_no: 0,
            line: Vec::new(),
            read,
        }
    }

    /// The next line, or `None` after the last input.
    pub fn next_line(&mut self) -> Result<Option<Line<'_>>, InputError> {
        loop {
            let Some((name, reader)) = &mut self.reading else {
                let Some(input) = self.inputs.get(self.next_input) else {
                    return Ok(None);
                };
                self.reading = Some((input.name(), open(input, &self.read)?));
                self.next_input += 1;
                self.line_no = 0;
                continue;
            };
            self.line.clear();
            let n = reader
                .read_until(b'\n', &mut self.line)
                .map_err(|source| InputError::Io {
                    path: name.clone(),
                    source,
                })?;
            if n == 0 {
                self.reading = None;
                continue;
            }
            self.line_no += 1;
            // The line ending: one "\n", then one "\r" before it.
            if self.line.last() == Some(&b'\n') {
                self.line.pop();
            }
            if self.line.last() == Some(&b'\r') {
                self.line.pop();
            }
            return Ok(Some(Line {
                input: self.reading.as_ref().map_or("", |(name, _)| name.as_str()),
                line_no: self.line_no,
                record: &self.line,
            }));
        }
    }
}

/// Calls `f` with each line of the inputs in order (see [`Lines`]). `read` counts
/// the bytes taken from disk so far.
pub fn for_each_line<E: From<InputError>>(
    inputs: &[Input],
    read: &Arc<AtomicU64>,
    mut f: impl FnMut(&str, u64, &[u8]) -> Result<(), E>,
) -> Result<(), E> {
    let mut lines = Lines::new(inputs.to_vec(), read.clone());
    while let Some(line) = lines.next_line()? {
        f(line.input, line.line_no, line.record)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    fn lines_of(inputs: &[Input]) -> Vec<(String, u64, String)> {
        let read = Arc::new(AtomicU64::new(0));
        let mut seen = Vec::new();
        for_each_line::<InputError>(inputs, &read, |name, n, line| {
            let file = Path::new(name)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            seen.push((file, n, String::from_utf8_lossy(line).into_owned()));
            Ok(())
        })
        .expect("read");
        seen
    }

    #[test]
    fn plain_gzip_and_zstd_files_and_a_directory_read_the_same_lines_in_name_order() {
        let dir = std::env::temp_dir().join(format!("syndic-input-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("a.jsonl"), b"{\"a\":1}\n\n{\"a\":2}\r\n").unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(b"{\"b\":1}\n{\"b\":2}").unwrap();
        std::fs::write(dir.join("b.jsonl.gz"), gz.finish().unwrap()).unwrap();
        std::fs::write(dir.join("c.data"), zstd::encode_all(&b"{\"c\":1}\n"[..], 3).unwrap()).unwrap();
        std::fs::write(dir.join(".hidden"), b"not read\n").unwrap();
        let expected = vec![
            ("a.jsonl".to_string(), 1, "{\"a\":1}".to_string()),
            ("a.jsonl".to_string(), 2, String::new()),
            ("a.jsonl".to_string(), 3, "{\"a\":2}".to_string()),
            ("b.jsonl.gz".to_string(), 1, "{\"b\":1}".to_string()),
            ("b.jsonl.gz".to_string(), 2, "{\"b\":2}".to_string()),
            ("c.data".to_string(), 1, "{\"c\":1}".to_string()),
        ];
        let whole = expand(&[dir.display().to_string()]).unwrap();
        assert_eq!(lines_of(&whole), expected);
        let named: Vec<String> = ["c.data", "a.jsonl"]
            .iter()
            .map(|f| dir.join(f).display().to_string())
            .collect();
        let files = expand(&named).unwrap();
        assert_eq!(lines_of(&files)[0].0, "c.data", "files are read in the order named");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_missing_file_or_an_empty_directory_says_which() {
        let missing = expand(&["/nonexistent/x.jsonl".to_string()]).unwrap();
        let read = Arc::new(AtomicU64::new(0));
        let err = open(&missing[0], &read).err().expect("refused").to_string();
        assert!(err.contains("/nonexistent/x.jsonl"), "{err}");
        let dir = std::env::temp_dir().join(format!("syndic-empty-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = expand(&[dir.display().to_string()]).unwrap_err().to_string();
        assert!(err.contains("holds no files"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
