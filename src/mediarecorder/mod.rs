//! The `mediarecorder` element: the web's MediaRecorder as a GStreamer bin.
//!
//! Each request sink pad gets a branch: queue -> (decode, convert, encode) -> a stage
//! of encoded frames. The stage decides, frame by frame, what belongs to the current
//! recording and restamps it onto the file's timeline; a muxing session of its own
//! (see `session`) writes the file, so a file can be finalized and a new one started
//! while media keeps flowing.

use gst::glib;
use gst::prelude::*;

mod branch;
pub mod chunks;
mod claim;
mod dispatcher;
mod displaymatrix;
pub mod encoding;
mod engine;
mod entry;
mod events;
mod followups;
mod frames;
mod imp;
mod journal;
mod location;
mod manifest;
pub mod mimetype;
mod muxers;
mod naming;
mod opening;
mod orientation;
mod orphans;
mod pads;
mod plan;
mod properties;
mod recorder;
mod recording;
mod recovery;
mod retention;
mod ring;
mod running;
mod session;
mod stage;
mod state;
pub mod timeline;
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
