//! What a writer that fell behind takes again: once it has dropped a frame of a track
//! (its queue was full), it drops that track's frames until the next keyframe, since a
//! delta frame after a gap decodes to a broken picture. Audio frames are all keyframes.
//! One rule for both queues a frame can wait in: a file's while it opens (`opening`)
//! and its muxer's (`session`).

/// Whether to take a frame: `resyncing`, the track dropped a frame and waits for a
/// keyframe; `room`, the queue has room. Returns whether the frame is taken, and
/// whether the track waits for a keyframe after it.
pub fn admit(resyncing: bool, keyframe: bool, room: bool) -> (bool, bool) {
    let take = room && (keyframe || !resyncing);
    (take, !take)
}

/// The tracks waiting for a keyframe after a drop.
#[derive(Debug, Default, Clone)]
pub struct Resync(Vec<usize>);

impl Resync {
    /// Whether to take a frame of `stream` (see `admit`), noting what follows.
    pub fn admit(&mut self, stream: usize, keyframe: bool, room: bool) -> bool {
        let resyncing = self.0.contains(&stream);
        let (take, resync) = admit(resyncing, keyframe, room);
        if resync && !resyncing {
            self.0.push(stream);
        } else if !resync && resyncing {
            self.0.retain(|s| *s != stream);
        }
        take
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn after_a_drop_a_track_waits_for_its_keyframe() {
        let mut r = Resync::default();
        // Video (0) and audio (1) flow; the queue fills.
        assert!(r.admit(0, true, true));
        assert!(r.admit(0, false, true));
        assert!(!r.admit(0, false, false));
        assert!(!r.admit(1, true, false));
        // Room again: audio goes on at once, video at its next keyframe.
        assert!(r.admit(1, true, true));
        assert!(!r.admit(0, false, true));
        assert!(!r.admit(0, false, true));
        assert!(r.admit(0, true, true));
        assert!(r.admit(0, false, true));
        // A keyframe without room is dropped too, and the wait goes on.
        assert!(!r.admit(0, true, false));
        assert!(!r.admit(0, false, true));
        assert!(r.admit(0, true, true));
    }
}
