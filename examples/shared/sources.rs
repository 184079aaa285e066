//! What `upload.rs` and `web.rs` record from, and how a source is linked into the
//! recorder. Each example includes this file with `#[path = "shared/sources.rs"] mod
//! sources;`.

use gst::prelude::*;

/// The camera recorded when there is one (with the microphone).
pub const CAMERA: &str = "/dev/video0";

/// Without a camera: a live test pattern ...
pub const TEST_VIDEO: &str = "videotestsrc is-live=true pattern=ball \
                              ! capsfilter caps=video/x-raw,width=640,height=480,framerate=30/1";
/// ... and a live tone.
pub const TEST_AUDIO: &str = "audiotestsrc is-live=true wave=ticks";

/// Adds a source given as a `gst-launch-1.0` description and links it to a new
/// `video_%u` or `audio_%u` pad of the recorder.
pub fn add_source(
    pipeline: &gst::Pipeline,
    recorder: &gst::Element,
    kind: &str,
    description: &str,
) -> Result<(), String> {
    let source = gst::parse::bin_from_description(description, true)
        .map_err(|e| format!("cannot make '{description}': {e}"))?;
    pipeline.add(&source).map_err(|e| e.to_string())?;
    let sink = recorder
        .request_pad_simple(&format!("{kind}_%u"))
        .ok_or(format!("the recorder gives no {kind} pad"))?;
    let src = source
        .static_pad("src")
        .expect("a ghost pad for the unlinked src");
    src.link(&sink).map_err(|e| e.to_string())?;
    Ok(())
}
