//! Cameras kept as they are, many at once (issue 25): H.264 + AAC from a file, played
//! as a camera sends them, recorded into MP4 without re-encoding. The frames reach the
//! recording in the thread that brought them (no queue of the element's own) and the
//! recorders of a process share the threads that run their jobs: these tests check that
//! every frame still arrives, byte for byte. Timing stays out of them (see
//! `bench/cameras.sh` for the cost).

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// Frames of the camera file (30 fps, a keyframe every 30).
const FRAMES: u32 = 90;

/// A small H.264 (with B-frames, as many cameras and files have) + AAC file.
fn camera_file(dir: &Path) -> PathBuf {
    let path = dir.join("camera.mp4");
    let pipeline = launch(&format!(
        "videotestsrc pattern=ball num-buffers={FRAMES} ! \
         video/x-raw,width=320,height=240,framerate=30/1 ! \
         x264enc bitrate=300 key-int-max=30 bframes=2 speed-preset=ultrafast ! h264parse ! \
         mp4mux name=m ! filesink location={} \
         audiotestsrc num-buffers={FRAMES} samplesperbuffer=1600 ! \
         audio/x-raw,rate=48000,channels=2 ! avenc_aac ! aacparse ! m.",
        path.display()
    ));
    expect_eos(&pipeline, Duration::from_secs(60));
    path
}

/// Packets of each kind in `path`: (video, audio).
fn packet_counts(path: &Path) -> (usize, usize) {
    let kinds: Vec<String> = ffprobe_streams(path)
        .iter()
        .map(|s| s.split(',').next().unwrap_or("").to_string())
        .collect();
    let packets = ffprobe_packets(path);
    let count = |kind: &str| {
        packets
            .iter()
            .filter(|p| kinds.get(p.stream).map(String::as_str) == Some(kind))
            .count()
    };
    (count("video"), count("audio"))
}

/// `src` demuxed into recorder `name`: paced as a live camera (`identity sync=true`,
/// each track through a queue) or as fast as the file reads, one thread feeding both
/// pads (no queue: the demuxer's thread carries both tracks into the recorder).
fn camera(src: &Path, name: &str, out: &Path, paced: bool) -> String {
    let track = if paced {
        "! queue ! identity sync=true !"
    } else {
        "!"
    };
    format!(
        "filesrc location={} ! qtdemux name=d{name} d{name}.video_0 {track} {name}. \
         d{name}.audio_0 {track} {name}. mediarecorder name={name} mime-type=video/mp4 \
         location={}",
        src.display(),
        out.display()
    )
}

#[test]
fn kept_as_is_video_and_audio_are_the_files_bytes() {
    isolated(Duration::from_secs(120), || {
        init();
        let dir = tmp_dir("density-bytes");
        let src = camera_file(&dir);
        for paced in [true, false] {
            let out = dir.join(format!("paced-{paced}.mp4"));
            let pipeline = launch(&camera(&src, "r", &out, paced));
            expect_eos(&pipeline, Duration::from_secs(60));
            drop(pipeline);
            for (map, what) in [("0:v", "video"), ("0:a", "audio")] {
                let sent = packet_hashes(&src, map);
                let ours = packet_hashes(&out, map);
                assert!(!sent.is_empty(), "the camera file has {what}");
                assert_eq!(
                    ours, sent,
                    "paced: {paced}: every {what} frame in the file is the source's, \
                         byte for byte, in order"
                );
            }
        }
    });
}

#[test]
fn fifty_kept_as_is_recorders_in_one_process_keep_every_frame() {
    isolated(Duration::from_secs(240), || {
        init();
        let dir = tmp_dir("density-fifty");
        let src = camera_file(&dir);
        let expected = packet_counts(&src);
        assert_eq!(expected.0, FRAMES as usize, "the camera file's video");
        // Each its own pipeline, as an application holding many cameras builds them;
        // half paced as live cameras, half as fast as they read.
        let cameras: Vec<(PathBuf, Running)> = (0..50)
            .map(|i| {
                let out = dir.join(format!("cam{i}.mp4"));
                let pipeline = launch(&camera(&src, "r", &out, i % 2 == 0));
                (out, pipeline)
            })
            .collect();
        for (_, pipeline) in &cameras {
            pipeline.set_state(gst::State::Playing).unwrap();
        }
        for (i, (_, pipeline)) in cameras.iter().enumerate() {
            match wait_message(pipeline, Duration::from_secs(120)) {
                End::Eos(_) => {}
                other => panic!("camera {i} did not finish: {other:?}"),
            }
        }
        // Each pipeline goes to NULL as its guard drops.
        let outs: Vec<PathBuf> = cameras.into_iter().map(|(out, _)| out).collect();
        for (i, out) in outs.iter().enumerate() {
            assert_eq!(
                packet_counts(out),
                expected,
                "camera {i}: every video and audio frame of the source in {}",
                out.display()
            );
        }
    });
}
