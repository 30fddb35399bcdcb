//! The keys an article is posted under besides its SimHash: its smallest shingle hashes
//! (anchors), the smallest of its lead, and its headline's key, as the configuration asks.

use crate::pipeline::fingerprint::sketch::Sketch;
use crate::pipeline::fingerprint::{Fingerprint, LEAD_ANCHORS};
use crate::pipeline::index::{IndexConfig, MAX_ANCHORS, MAX_ANCHOR_KEYS, NO_ANCHOR};

/// An article's anchor keys for the index: its `anchors` smallest shingle hashes, then its
/// `lead_anchors` lead anchors, a lead anchor that is already among the first left out, then
/// its headline's key if `title_anchor`.
pub struct AnchorKeys {
    keys: [u32; MAX_ANCHOR_KEYS],
    len: usize,
}

impl AnchorKeys {
    pub fn of(fp: &Fingerprint, config: &IndexConfig) -> Self {
        Self::from_parts(&fp.sketch, &fp.lead_anchors, fp.title, config)
    }

    pub fn from_parts(
        sketch: &Sketch,
        lead_anchors: &[u32; LEAD_ANCHORS],
        title: Option<u64>,
        config: &IndexConfig,
    ) -> Self {
        let mut keys = [NO_ANCHOR; MAX_ANCHOR_KEYS];
        let smallest = sketch.shingles();
        let anchors = config.anchors.min(MAX_ANCHORS);
        let found = smallest.len().min(anchors);
        keys[..found].copy_from_slice(&smallest[..found]);
        let lead = config.lead_anchors.min(LEAD_ANCHORS);
        for (key, &anchor) in keys[anchors..anchors + lead].iter_mut().zip(lead_anchors) {
            if !smallest[..found].contains(&anchor) {
                *key = anchor;
            }
        }
        let mut len = anchors + lead;
        if config.title_anchor {
            // The high half: shingle hashes are low halves of other hashes. `NO_ANCHOR` is
            // never a key.
            keys[len] = title.map_or(NO_ANCHOR, |t| ((t >> 32) as u32).min(NO_ANCHOR - 1));
            len += 1;
        }
        Self { keys, len }
    }

    pub fn as_slice(&self) -> &[u32] {
        &self.keys[..self.len]
    }

    /// Writes the keys into `keys`, as many as both hold: both sides count keys from one
    /// validated configuration, so the lengths agree.
    pub fn copy_into(&self, keys: &mut [u32]) {
        let n = keys.len().min(self.len);
        keys[..n].copy_from_slice(&self.keys[..n]);
    }
}
