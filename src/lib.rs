//! GStreamer plugin with the `mediarecorder` element: the web's MediaRecorder for any
//! pipeline, writing finalized, seekable WebM.

use gst::glib;

pub mod mediarecorder;
pub mod repair;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    mediarecorder::register(plugin)
}

gst::plugin_define!(
    mediarecorder,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL-2.0",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // Origin URL: the project has no public address. GStreamer refuses to load a plugin
    // whose origin is empty, so this is what GStreamer's own builds say when their
    // packager gives none.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
