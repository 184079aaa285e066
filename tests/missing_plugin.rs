//! A missing encoder is named with the Debian package that has it. In a test binary of
//! its own, since it takes the encoder out of this process's registry.

mod common;

use std::time::Duration;

use common::*;
use gst::prelude::*;

#[test]
fn missing_encoder_names_element_and_package() {
    init();
    let registry = gst::Registry::get();
    let feature = registry
        .lookup_feature("vp8enc")
        .expect("vp8enc is installed");
    registry.remove_feature(&feature);
    assert!(gst::ElementFactory::find("vp8enc").is_none());

    let dir = tmp_dir("missing_plugin");
    let p = launch(&format!(
        "videotestsrc is-live=true ! mediarecorder name=r location={}",
        dir.join("x.webm").display()
    ));
    let (events, _) = Events::watch(&recorder(&p));
    assert_says(
        &expect_error(&p, Duration::from_secs(5)),
        &["'vp8enc'", "gstreamer1.0-plugins-good"],
    );
    assert!(
        !events.names().contains(&"start".to_string()),
        "no recording starts without an encoder"
    );
    let supported = recorder(&p).emit_by_name::<bool>("is-type-supported", &[&"video/webm"]);
    assert!(!supported, "video/webm needs vp8enc");
}

/// H.265 into WebM must be decoded: with no H.265 decoder, the error names the codec and
/// the package, rather than a link that fails without a word.
#[test]
fn missing_decoder_names_codec_and_package() {
    init();
    let registry = gst::Registry::get();
    for decoder in ["avdec_h265", "libde265dec"] {
        if let Some(feature) = registry.lookup_feature(decoder) {
            registry.remove_feature(&feature);
        }
    }
    let dir = tmp_dir("missing_decoder");
    let p = launch(&format!(
        "videotestsrc num-buffers=5 ! x265enc ! h265parse ! mediarecorder name=r location={}",
        dir.join("x.webm").display()
    ));
    assert_says(
        &expect_error(&p, Duration::from_secs(10)),
        &[
            "H.265 cannot be stored in WebM",
            "gstreamer1.0-libav",
            "video/mp4 or video/x-matroska",
        ],
    );
}
