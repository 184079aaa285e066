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
mod dispatcher;
pub mod encoding;
mod entry;
mod events;
mod imp;
pub mod mimetype;
mod naming;
mod opening;
mod orphans;
mod pads;
mod recorder;
mod recording;
mod ring;
mod session;
pub mod timeline;

/// What the recorder is doing, as the web API's `state` attribute.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMediaRecorderState")]
pub enum RecorderState {
    #[default]
    #[enum_value(name = "Inactive: not recording", nick = "inactive")]
    Inactive = 0,
    #[enum_value(name = "Recording: media is written", nick = "recording")]
    Recording = 1,
    #[enum_value(name = "Paused: media is dropped until resumed", nick = "paused")]
    Paused = 2,
}

/// The web API's `audioBitrateMode`.
#[derive(Debug, Default, Eq, PartialEq, Hash, Clone, Copy, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstMediaRecorderBitrateMode")]
pub enum BitrateMode {
    #[enum_value(name = "Constant: the same rate throughout", nick = "constant")]
    Constant = 0,
    #[default]
    #[enum_value(name = "Variable: the rate follows the content", nick = "variable")]
    Variable = 1,
}

glib::wrapper! {
    pub struct MediaRecorder(ObjectSubclass<imp::MediaRecorder>)
        @extends gst::Bin, gst::Element, gst::Object,
        @implements gst::ChildProxy;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    RecorderState::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    BitrateMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(
        Some(plugin),
        "mediarecorder",
        gst::Rank::NONE,
        MediaRecorder::static_type(),
    )
}
