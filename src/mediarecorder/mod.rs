//! The `mediarecorder` element: the web's MediaRecorder as a GStreamer bin.
//!
//! Each request sink pad gets a branch: queue -> (decode, convert, encode) -> a stage
//! of encoded frames. The stage decides, frame by frame, what belongs to the current
//! recording and restamps it onto the file's timeline; a muxing session of its own
//! (see `session`) writes the file, so a file can be finalized and a new one started
//! while media keeps flowing.
//!
//! # Locks and threads
//!
//! The locks, in the order they are taken (never the other way round):
//! 1. `settings` (`imp`): the property values; under it only `state` is taken (setting
//!    `pre-record` to 0 empties the ring). The frame path reads it alone, after its
//!    look at `state`.
//! 2. `state` (`imp`): pads and branches, the stage (`stage`: idle with its pre-record
//!    ring, or the current recording with its engine and writer). A streaming thread holds it while it places a frame
//!    and hands it to its file, so a recording cannot end between the two.
//! 3. a file's slot (`opening`): its muxer session, or the frames waiting while it opens.
//! 4. a session's track (`session`): its frames waiting for the muxer, with their
//!    batch, resync and Opus state; held while they go to the muxer, so they go in
//!    order (to an `appsrc`, or into mp4mux's pad only while it has room: `feed`).
//! 5. a session's chunk cutter (`chunks`): the bytes not yet given to `dataavailable`.
//!
//! Taken alone, for a moment: `event_state`, the dispatcher's queue, a recording's
//! `Retention`, the journal's table of open markers.
//!
//! Under a lock the code decides (the engine), queues (a frame for the muxer's track
//! or the opening file's queue, each bounded at 32 MiB past which frames are dropped
//! and the track resumes at a keyframe, see `resync`; a job onto the dispatcher) and
//! reads counters. Never under a lock: a file-system call (not even `exists`), waiting
//! for the dispatcher or a muxer, emitting a signal or notifying a property, sending an
//! event upstream, changing a child's state.
//!
//! Which thread touches the file system:
//! - streaming threads (the branches, `on_sample`): never. At end of stream the stage's
//!   thread waits, unlocked, for the file to be finalized, so that the bin's EOS
//!   follows the finished file: while the muxer makes progress (see `finalize`), up to
//!   4 s without progress.
//! - the dispatcher thread (`dispatcher`, `events`): everything a recording's files
//!   need, in order: claiming a name and its journal marker (`claim`, `journal`),
//!   opening the muxer, syncing to disk each second, finalizing, removing a file
//!   without frames, retention (`manifest`, `retention`). A stalled folder delays these
//!   and the signals queued behind them, never the streams.
//! - each file's muxer session: the muxer's own thread writes the file (an aggregator
//!   muxer's; 1.22's matroskamux writes on its tracks' `appsrc` threads).
//! - the recovery thread (`recovery`): finalizes the files a crash left unfinished.
//! - the application's thread, unlocked: `start-recording` and READY->PAUSED check the
//!   location (`claim::precheck`, a probe file) before they answer, so that their error
//!   goes to the caller; PAUSED->READY waits for the last file to be finalized, as
//!   the end of stream does.
//!
//! `tests/slow_fs.rs` records into a folder whose calls stall and checks that streams,
//! properties and state changes go on.

use gst::glib;
use gst::prelude::*;

mod batch;
mod branch;
mod chunks;
mod claim;
pub(crate) mod codecs;
pub(crate) mod containers;
mod disk_syncs;
mod dispatcher;
mod displaymatrix;
mod encoding;
mod engine;
mod entry;
mod events;
mod feed;
mod finalize;
mod followups;
mod frames;
mod imp;
mod journal;
mod location;
mod manifest;
mod mimetype;
mod muxers;
pub(crate) mod naming;
mod opening;
mod orientation;
mod orphans;
mod pads;
mod plan;
mod properties;
mod recorder;
mod recording;
mod recovery;
mod resync;
mod retention;
mod ring;
mod running;
mod session;
mod stage;
mod state;
mod timeline;
mod writer;

pub use state::{BitrateMode, RecorderState, SegmentAlign};

glib::wrapper! {
    pub struct MediaRecorder(ObjectSubclass<imp::MediaRecorder>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    RecorderState::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    BitrateMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    SegmentAlign::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "mediarecorder",
        gst::Rank::NONE,
        MediaRecorder::static_type(),
    )
}
