//! What each container's descriptor decides, judged in the files written.

mod common;

use std::time::Duration;

use common::*;

/// AAC packets of 1024 samples at 48 kHz (21.333 ms) do not line up with 1 s files:
/// each boundary falls 18.7 ms further into a packet than the one before, so of five
/// boundaries at least one falls more than half into a packet. mp4mux cannot drop the
/// head of a track's first packet, so a packet cut there would play whole and the
/// next would start within it: each file's audio starts with a packet cut less than
/// half, or with the first packet wholly inside it.
#[test]
fn mp4_files_begin_their_audio_less_than_half_a_packet_into_a_packet() {
    init();
    let dir = tmp_dir("mp4_audio_head");
    let p = launch(&format!(
        "mediarecorder name=r mime-type=video/mp4 duration=6000 max-file-duration=1000 \
         location={}/rec-%02d.mp4 \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc is-live=true samplesperbuffer=1024 ! \
         audio/x-raw,rate=48000,channels=2 ! r.",
        dir.display()
    ));
    expect_eos(&p, Duration::from_secs(30));
    drop(p);
    let packet = 1024.0 / 48_000.0;
    let mut files = 0;
    for n in 0..6 {
        let path = dir.join(format!("rec-{n:02}.mp4"));
        let packets = ffprobe_packets(&path);
        let audio_stream = ffprobe_streams(&path)
            .iter()
            .position(|s| s.starts_with("audio,aac"))
            .unwrap_or_else(|| panic!("{} has no AAC track", path.display()));
        let audio: Vec<f64> = packets
            .iter()
            .filter(|p| p.stream == audio_stream)
            .filter_map(|p| p.pts)
            .collect();
        assert!(
            audio.len() > 20,
            "{}: {} audio packets",
            path.display(),
            audio.len()
        );
        assert!(
            audio.windows(2).all(|w| w[0] < w[1]),
            "{}: audio times not increasing: {:?}",
            path.display(),
            &audio[..4]
        );
        // The first packet plays until the second starts: at least half of it.
        assert!(
            audio[1] - audio[0] >= packet / 2.0,
            "{}: the first audio packet overlaps the next: {:?}",
            path.display(),
            &audio[..3]
        );
        assert_eq!(ffmpeg_errors(&path), "", "{}", path.display());
        files += 1;
    }
    assert_eq!(files, 6);
}

/// mp4mux takes a track's caps once, and Opus caps carry the pre-skip, which is known
/// only with the track's first frame in the file (the encoder's priming, or the head
/// cut off at a boundary). Files after the first begin with a pre-skip of their own.
#[test]
fn opus_in_mp4_segments_each_take_their_pre_skip() {
    init();
    let dir = tmp_dir("mp4_opus_segments");
    let p = launch(&format!(
        "mediarecorder name=r mime-type=video/mp4;codecs=avc1,opus duration=3000 \
         max-file-duration=1000 location={}/rec-%02d.mp4 \
         videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc is-live=true ! audio/x-raw,rate=48000,channels=2 ! r.",
        dir.display()
    ));
    expect_eos(&p, Duration::from_secs(20));
    drop(p);
    for n in 0..3 {
        let path = dir.join(format!("rec-{n:02}.mp4"));
        assert_eq!(
            ffprobe_streams(&path)
                .iter()
                .map(|s| s.split(',').take(2).collect::<Vec<_>>().join(","))
                .collect::<Vec<_>>(),
            ["video,h264", "audio,opus"],
            "{}",
            path.display()
        );
        let samples = ffprobe_audio_samples(&path);
        assert!(samples > 40_000, "{}: {samples} samples", path.display());
        assert_eq!(ffmpeg_errors(&path), "", "{}", path.display());
    }
}
