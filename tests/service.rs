//! A recorder run as a service and configured by hand (issue 23, items 7-11): values
//! typed by mistake, a timed recording under an encoder that cannot keep up, stopping
//! with SIGTERM, the end of a timed recording of a file, and MP4 `dataavailable`.
//!
//! What can hang runs in a child process with a deadline (`gst-launch-1.0`, or this
//! test binary running one test), so every case ends by itself.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;

/// Frames and duration of a file's video, as ffprobe counts them.
fn ffprobe_video(path: &Path) -> (u64, f64) {
    let out = Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0", "-count_frames"])
        .args(["-show_entries", "stream=nb_read_frames:format=duration"])
        .args(["-of", "default=noprint_wrappers=1:nokey=0"])
        .arg(path)
        .output()
        .expect("ffprobe runs (scripts/setup.sh installs ffmpeg)");
    let text = String::from_utf8_lossy(&out.stdout);
    let field = |name: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
            .and_then(|v| v.trim().parse::<f64>().ok())
    };
    let frames = field("nb_read_frames").unwrap_or_else(|| {
        panic!(
            "ffprobe reads no video frames in {}: {text} {}",
            path.display(),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (frames as u64, field("duration").unwrap_or(f64::NAN))
}

// ---------------------------------------------------------------------------------
// 11. MP4 dataavailable
// ---------------------------------------------------------------------------------

/// With `timeslice`, every MP4 fragment reaches `dataavailable`: the chunks hold the
/// whole stream, every chunk after the first begins with a fragment (`moof`), and the
/// joined chunks play as the file does.
#[test]
fn mp4_timeslice_chunks_hold_every_fragment_and_play() {
    init();
    if gst::ElementFactory::find("x264enc").is_none() {
        panic!("x264enc is missing: run scripts/setup.sh (gstreamer1.0-plugins-ugly)");
    }
    let dir = tmp_dir("service-mp4-chunks");
    let path = dir.join("out.mp4");
    let p = launch(&format!(
        "mediarecorder name=r mime-type=video/mp4 timeslice=1000 duration=3000 location={} \
         videotestsrc num-buffers=150 ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
         audiotestsrc num-buffers=300 ! r.",
        path.display()
    ));
    let r = recorder(&p);
    let (_events, chunks) = Events::watch(&r);
    expect_eos(&p, Duration::from_secs(30));
    drop(p);

    let buffers = chunks.0.lock().unwrap().clone();
    let sizes: Vec<usize> = buffers.iter().map(|b| b.size()).collect();
    let joined = chunks.joined();
    let file_size = std::fs::metadata(&path).unwrap().len() as usize;
    println!(
        "chunks {sizes:?}, joined {} bytes, file {file_size}",
        joined.len()
    );
    // The file differs from the stream only by what the muxer patched in place.
    assert_eq!(joined.len(), file_size, "chunk sizes {sizes:?}");
    assert!(
        sizes.iter().filter(|s| **s > 0).count() >= 3,
        "3 s in 1 s slices: {sizes:?}"
    );
    for (i, b) in buffers.iter().enumerate().skip(1) {
        let data = b.map_readable().unwrap();
        if data.is_empty() {
            continue;
        }
        assert_eq!(
            data.get(4..8),
            Some(&b"moof"[..]),
            "chunk {i} of {sizes:?} does not begin with a fragment"
        );
    }
    let joined_path = dir.join("joined.mp4");
    std::fs::write(&joined_path, &joined).unwrap();
    let (file_frames, file_duration) = ffprobe_video(&path);
    let (joined_frames, joined_duration) = ffprobe_video(&joined_path);
    println!(
        "file: {file_frames} frames, {file_duration:.3} s; joined chunks: {joined_frames} \
         frames, {joined_duration:.3} s"
    );
    assert_eq!(file_frames, 90, "3 s at 30 fps in the file");
    assert_eq!(joined_frames, file_frames, "frames in the joined chunks");
    assert!(
        (joined_duration - file_duration).abs() < 0.05,
        "joined chunks last {joined_duration} s, the file {file_duration} s"
    );
}
