//! The muxer's byte stream, cut into `dataavailable` chunks.
//!
//! A muxer writing to a seekable sink goes back to fill in sizes, Duration and Cues.
//! Those rewrites belong in the file, but not in the chunks: the chunks carry only the
//! bytes written in order, so their concatenation is a complete stream. With a
//! timeslice, a chunk ends where a cluster (WebM) or a fragment (MP4) starts at or
//! after the slice boundary, so every chunk after the first begins with one (which
//! begins with a keyframe).

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

/// Where a buffer of the muxer's byte stream stands, as the glue reads it from the
/// buffer (its flags and time, or its first box).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// Inside the header, a cluster or a fragment; its media time when it has one.
    Within(Option<u64>),
    /// Begins a WebM/Matroska cluster of this media time.
    Cluster(u64),
    /// Begins an MP4 fragment (a `moof` box). Its media time is not in the buffer: it
    /// is that of the next buffer that has one (the fragment's first sample).
    Fragment,
}

#[derive(Debug, Default)]
pub struct ChunkCutter {
    /// End of the in-order stream: total bytes written once.
    written: u64,
    /// Where the next buffer lands: the end of the last one, or where the last byte
    /// segment (a seek by the muxer) put it. Buffer offsets are not byte positions
    /// (mp4mux stamps its samples with offsets inside their `mdat`); a file sink
    /// writes where the segments say, and so does the cutter.
    position: u64,
    timeslice: Option<u64>,
    next_cut: u64,
    current: Chunk,
    /// Stream offset where `current` begins.
    current_begins: u64,
    /// A fragment began this many bytes into `current`; its time is not known yet.
    fragment_at: Option<u64>,
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

    /// One buffer from the muxer, written at the current position. `mark` says whether
    /// a cluster or fragment begins with it. `keep` says whether anyone wants the bytes.
    /// Returns a finished chunk when a cluster or fragment at or past the next
    /// timeslice boundary begins a new one.
    pub fn push(&mut self, data: &[u8], mark: Mark, keep: bool) -> Option<Chunk> {
        let at = self.position;
        let len = data.len() as u64;
        self.position = at + len;
        if at != self.written {
            // A rewrite of bytes already in the stream: the file gets it, chunks do not.
            return None;
        }
        self.written += len;
        let finished = match mark {
            Mark::Cluster(ts) => self.boundary(self.current.size, ts),
            Mark::Fragment => {
                self.fragment_at = Some(self.current.size);
                None
            }
            Mark::Within(Some(ts)) => match self.fragment_at.take() {
                Some(begins) => self.boundary(begins, ts),
                None => None,
            },
            Mark::Within(None) => None,
        };
        if keep {
            self.current.data.extend_from_slice(data);
        }
        self.current.size += len;
        finished
    }

    /// A cluster or fragment of media time `ts` begins `begins` bytes into the current
    /// chunk: the chunk ends there when the timeslice says so.
    fn boundary(&mut self, begins: u64, ts: u64) -> Option<Chunk> {
        let mut finished = None;
        if let Some(slice) = self.timeslice {
            if ts >= self.next_cut && begins > 0 {
                finished = Some(self.cut_at(begins, ts));
                self.next_cut = (ts / slice + 1) * slice;
            }
        }
        if begins == 0 && self.current_begins > 0 {
            // The first cluster of a chunk `request-data` began: the chunk's time.
            self.current.timecode = ts;
        }
        self.last_timecode = ts;
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
        self.cut_at(self.current.size, last)
    }

    /// Ends the current chunk `at` bytes into it; the rest begins the next one, of
    /// media time `next_timecode`.
    fn cut_at(&mut self, at: u64, next_timecode: u64) -> Chunk {
        let mut next = Chunk {
            timecode: next_timecode.max(self.current.timecode),
            ..Default::default()
        };
        let rest = self.current.size - at.min(self.current.size);
        // Kept bytes are the chunk's last ones (a listener may have come late).
        let kept_rest = (rest as usize).min(self.current.data.len());
        let split = self.current.data.len() - kept_rest;
        next.data = self.current.data.split_off(split);
        next.size = rest;
        self.current.size -= rest;
        self.current_begins += self.current.size;
        // A fragment waiting for its time began in the chunk handed on.
        self.fragment_at = None;
        std::mem::replace(&mut self.current, next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: u64 = 1_000_000_000;

    fn push(c: &mut ChunkCutter, data: &[u8], mark: Mark) -> Option<Vec<u8>> {
        c.push(data, mark, true).map(|chunk| chunk.data)
    }

    #[test]
    fn rewrites_stay_out_of_chunks() {
        let mut c = ChunkCutter::new(None);
        assert_eq!(push(&mut c, b"head", Mark::Within(None)), None);
        assert_eq!(push(&mut c, b"cluster", Mark::Cluster(0)), None);
        // The muxer goes back to patch the header, then continues at the end.
        c.seek(0);
        assert_eq!(push(&mut c, b"HEAD", Mark::Within(None)), None);
        c.seek(11);
        assert_eq!(push(&mut c, b"more", Mark::Within(Some(S))), None);
        let chunk = c.take();
        assert_eq!(chunk.data, b"headclustermore");
        assert_eq!(chunk.timecode, 0);
        assert_eq!(c.bytes_written(), 15);
    }

    #[test]
    fn timeslice_cuts_at_clusters() {
        let mut c = ChunkCutter::new(Some(S));
        assert!(push(&mut c, b"h", Mark::Within(None)).is_none());
        assert!(push(&mut c, b"c0", Mark::Cluster(0)).is_none());
        assert!(push(&mut c, b"f", Mark::Within(Some(S / 30))).is_none());
        // A cluster before the boundary stays in the chunk.
        assert!(push(&mut c, b"c5", Mark::Cluster(S / 2)).is_none());
        let first = c.push(b"c1", Mark::Cluster(S), true).unwrap();
        assert_eq!(first.data, b"hc0fc5");
        assert_eq!(first.timecode, 0);
        // A late cluster still cuts, and the cadence stays on whole slices.
        let second = c.push(b"c2", Mark::Cluster(2 * S + S / 10), true).unwrap();
        assert_eq!(second.data, b"c1");
        assert_eq!(second.timecode, S);
        let third = c.push(b"c3", Mark::Cluster(3 * S), true).unwrap();
        assert_eq!(third.timecode, 2 * S + S / 10);
        let last = c.take();
        assert_eq!(last.data, b"c3");
        assert_eq!(last.timecode, 3 * S);
    }

    /// mp4mux's stream: ftyp and moov without times, then per fragment a `moof` and
    /// the `mdat` header, then the samples with their times; offsets on the samples
    /// are not byte positions. At the end it writes `mfra`, then patches the header.
    #[test]
    fn timeslice_cuts_before_mp4_fragments() {
        let mut c = ChunkCutter::new(Some(S));
        for part in [&b"ftyp"[..], b"moov"] {
            assert!(push(&mut c, part, Mark::Within(None)).is_none());
        }
        let mut chunks = Vec::new();
        for fragment in 0..3u64 {
            assert!(push(&mut c, b"moof", Mark::Fragment).is_none());
            assert!(push(&mut c, b"mdat", Mark::Within(None)).is_none());
            for sample in 0..3 {
                let ts = fragment * S + sample * S / 3;
                if let Some(chunk) = c.push(b"s", Mark::Within(Some(ts)), true) {
                    chunks.push(chunk);
                }
            }
        }
        assert!(push(&mut c, b"mfra", Mark::Within(None)).is_none());
        c.seek(0);
        assert!(push(&mut c, b"FTYP", Mark::Within(None)).is_none());
        chunks.push(c.take());
        let data: Vec<&[u8]> = chunks.iter().map(|c| c.data.as_slice()).collect();
        assert_eq!(
            data,
            [
                &b"ftypmoovmoofmdatsss"[..],
                b"moofmdatsss",
                b"moofmdatsssmfra"
            ]
        );
        let times: Vec<u64> = chunks.iter().map(|c| c.timecode).collect();
        assert_eq!(times, [0, S, 2 * S]);
        let sizes: Vec<u64> = chunks.iter().map(|c| c.size).collect();
        assert_eq!(sizes, [19, 11, 15]);
        assert_eq!(c.bytes_written(), 45);
    }

    #[test]
    fn a_chunk_taken_inside_a_fragment_is_not_split_again() {
        let mut c = ChunkCutter::new(Some(S));
        push(&mut c, b"moov", Mark::Within(None));
        push(&mut c, b"moof", Mark::Fragment);
        // request-data between the fragment's header and its first sample.
        assert_eq!(c.take().data, b"moovmoof");
        assert!(push(&mut c, b"s", Mark::Within(Some(S))).is_none());
        assert_eq!(c.take().data, b"s");
    }

    #[test]
    fn held_chunks_are_taken_once_in_order() {
        let mut c = ChunkCutter::new(Some(S));
        c.push(b"h", Mark::Cluster(0), true);
        let first = c.push(b"c1", Mark::Cluster(S), true).unwrap();
        c.hold(first);
        let second = c.push(b"c2", Mark::Cluster(2 * S), true).unwrap();
        c.hold(second);
        let held: Vec<Vec<u8>> = c.take_ready().into_iter().map(|c| c.data).collect();
        assert_eq!(held, [b"h".to_vec(), b"c1".to_vec()]);
        assert!(c.take_ready().is_empty());
        assert_eq!(c.take().data, b"c2");
    }

    #[test]
    fn request_data_may_be_empty_and_counts_unkept_bytes() {
        let mut c = ChunkCutter::new(None);
        c.push(b"abc", Mark::Cluster(0), false);
        let chunk = c.take();
        assert!(chunk.data.is_empty());
        assert_eq!(chunk.size, 3);
        let empty = c.take();
        assert_eq!(empty.size, 0);
        assert_eq!(empty.timecode, 0);
        // The next chunk's time is that of the cluster that begins it.
        c.push(b"c", Mark::Cluster(2 * S), true);
        assert_eq!(c.take().timecode, 2 * S);
    }
}
