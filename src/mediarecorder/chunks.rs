//! The muxer's byte stream, cut into `dataavailable` chunks.
//!
//! A muxer writing to a seekable sink goes back to fill in sizes, Duration and Cues.
//! Those rewrites belong in the file, but not in the chunks: the chunks carry only the
//! bytes written in order, so their concatenation is a complete stream. With a
//! timeslice, a chunk ends where a cluster starts at or after the slice boundary, so
//! every chunk after the first begins with a cluster (which begins with a keyframe).

use std::collections::VecDeque;

/// Bytes handed to `dataavailable`, with the media time where they start.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Chunk {
    pub data: Vec<u8>,
    /// Media time (ns) of the first cluster in the chunk; 0 for the first chunk.
    pub timecode: u64,
    /// Bytes in the chunk, also when they were not kept.
    pub size: u64,
}

#[derive(Debug, Default)]
pub struct ChunkCutter {
    /// End of the in-order stream: total bytes written once.
    written: u64,
    /// Where the next buffer without an offset lands.
    position: u64,
    timeslice: Option<u64>,
    next_cut: u64,
    current: Chunk,
    last_timecode: u64,
    /// Timeslice chunks cut but not handed on yet, oldest first.
    ready: VecDeque<Chunk>,
}

impl ChunkCutter {
    pub fn new(timeslice: Option<u64>) -> Self {
        ChunkCutter {
            timeslice: timeslice.filter(|t| *t > 0),
            next_cut: timeslice.unwrap_or(0),
            ..Default::default()
        }
    }

    pub fn bytes_written(&self) -> u64 {
        self.written
    }

    /// A byte segment (a seek by the muxer) moves the write position.
    pub fn seek(&mut self, position: u64) {
        self.position = position;
    }

    /// One buffer from the muxer. `offset` is its byte offset where the muxer sets one;
    /// `cluster_start` is the media time of a cluster that begins with this buffer.
    /// `keep` says whether anyone wants the bytes. Returns a finished chunk when this
    /// buffer opens the next one.
    pub fn push(
        &mut self,
        offset: Option<u64>,
        data: &[u8],
        cluster_start: Option<u64>,
        keep: bool,
    ) -> Option<Chunk> {
        let at = offset.unwrap_or(self.position);
        let len = data.len() as u64;
        self.position = at + len;
        if at != self.written {
            // A rewrite of bytes already in the stream: the file gets it, chunks do not.
            return None;
        }
        self.written += len;
        let mut finished = None;
        if let (Some(ts), Some(slice)) = (cluster_start, self.timeslice) {
            if ts >= self.next_cut && self.current.size > 0 {
                finished = Some(self.cut(ts));
                self.next_cut = (ts / slice + 1) * slice;
            }
        }
        if let Some(ts) = cluster_start {
            if self.current.size == 0 && self.written > len {
                self.current.timecode = ts;
            }
            self.last_timecode = ts;
        }
        if keep {
            self.current.data.extend_from_slice(data);
        }
        self.current.size += len;
        finished
    }

    /// Keeps a timeslice chunk until whoever hands chunks on next takes it: the job
    /// queued to emit it, `request-data`, or the end of the file, whichever comes first.
    /// A chunk cut while the muxer drains at the end would otherwise be emitted after
    /// the file's last chunk (and after `stop`).
    pub fn hold(&mut self, chunk: Chunk) {
        self.ready.push_back(chunk);
    }

    /// The held chunks, oldest first; they come before anything `take` cuts next.
    pub fn take_ready(&mut self) -> Vec<Chunk> {
        self.ready.drain(..).collect()
    }

    /// What was written since the last chunk (possibly nothing), as `request-data` and
    /// the end of a recording need.
    pub fn take(&mut self) -> Chunk {
        let last = self.last_timecode;
        self.cut(last)
    }

    fn cut(&mut self, next_timecode: u64) -> Chunk {
        let next = Chunk {
            timecode: next_timecode.max(self.current.timecode),
            ..Default::default()
        };
        std::mem::replace(&mut self.current, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    #[test]
    fn rewrites_stay_out_of_chunks() {
        let mut c = ChunkCutter::new(None);
        assert_eq!(c.push(Some(0), b"head", None, true), None);
        assert_eq!(c.push(Some(4), b"cluster", Some(0), true), None);
        // The muxer goes back to patch the header, then continues at the end.
        c.seek(0);
        assert_eq!(c.push(None, b"HEAD", None, true), None);
        c.seek(11);
        assert_eq!(c.push(None, b"more", None, true), None);
        let chunk = c.take();
        assert_eq!(chunk.data, b"headclustermore");
        assert_eq!(chunk.timecode, 0);
        assert_eq!(c.bytes_written(), 15);
    }

    #[test]
    fn timeslice_cuts_at_clusters() {
        let mut c = ChunkCutter::new(Some(S));
        assert!(c.push(Some(0), b"h", None, true).is_none());
        assert!(c.push(Some(1), b"c0", Some(0), true).is_none());
        assert!(c.push(Some(3), b"f", None, true).is_none());
        // A cluster before the boundary stays in the chunk.
        assert!(c.push(Some(4), b"c5", Some(S / 2), true).is_none());
        let first = c.push(Some(6), b"c1", Some(S), true).unwrap();
        assert_eq!(first.data, b"hc0fc5");
        assert_eq!(first.timecode, 0);
        // A late cluster still cuts, and the cadence stays on whole slices.
        let second = c.push(Some(8), b"c2", Some(2 * S + S / 10), true).unwrap();
        assert_eq!(second.data, b"c1");
        assert_eq!(second.timecode, S);
        let third = c.push(Some(10), b"c3", Some(3 * S), true).unwrap();
        assert_eq!(third.timecode, 2 * S + S / 10);
        let last = c.take();
        assert_eq!(last.data, b"c3");
        assert_eq!(last.timecode, 3 * S);
    }

    #[test]
    fn held_chunks_are_taken_once_in_order() {
        let mut c = ChunkCutter::new(Some(S));
        c.push(Some(0), b"h", Some(0), true);
        let first = c.push(Some(1), b"c1", Some(S), true).unwrap();
        c.hold(first);
        let second = c.push(Some(3), b"c2", Some(2 * S), true).unwrap();
        c.hold(second);
        let held: Vec<Vec<u8>> = c.take_ready().into_iter().map(|c| c.data).collect();
        assert_eq!(held, [b"h".to_vec(), b"c1".to_vec()]);
        assert!(c.take_ready().is_empty());
        assert_eq!(c.take().data, b"c2");
    }

    #[test]
    fn request_data_may_be_empty_and_counts_unkept_bytes() {
        let mut c = ChunkCutter::new(None);
        c.push(Some(0), b"abc", Some(0), false);
        let chunk = c.take();
        assert!(chunk.data.is_empty());
        assert_eq!(chunk.size, 3);
        let empty = c.take();
        assert_eq!(empty.size, 0);
        assert_eq!(empty.timecode, 0);
    }
}
