//! Where a recording's audio lands: in which file, at what time. Each file is read
//! with ffprobe, packet by packet.

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;

/// Packet times (s) of one stream of `path`, sorted.
fn packet_times(path: &Path, stream: &str) -> Vec<f64> {
    let mut times: Vec<f64> = ffprobe_csv(
        path,
        &format!("-select_streams {stream} -show_entries packet=pts_time"),
    )
    .lines()
    .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
    .collect();
    times.sort_by(f64::total_cmp);
    times
}

fn aac_encoder() -> &'static str {
    if gst::ElementFactory::find("voaacenc").is_some() {
        "voaacenc"
    } else {
        "avenc_aac"
    }
}

/// 4 s of H.264 and 188 AAC packets (4.37 s at 44.1 kHz), non-live, in 1 s files.
/// With `audio_lags`, each AAC packet reaches the recorder 30 ms after the one
/// before (a slow audio encoder): the audio comes seconds after the video that cut
/// its files.
fn record_h264_aac_segments(
    container: &str,
    mime: &str,
    audio_lags: bool,
    dir: &Scratch,
) -> Vec<std::path::PathBuf> {
    let slow = if audio_lags {
        "! identity sleep-time=30000"
    } else {
        ""
    };
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=120 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc key-int-max=30 ! h264parse ! mediarecorder name=rec mime-type={mime} \
         max-file-duration=1000 location={}/rec-%02d.{container} \
         audiotestsrc num-buffers=188 samplesperbuffer=1024 ! {} ! aacparse {slow} ! rec.",
        dir.join("").display(),
        aac_encoder()
    ));
    expect_eos(&pipeline, Duration::from_secs(60));
    files_with_extension(&dir.join(""), container)
}

/// Every AAC packet reaches a file, each file's audio starts at its start and covers
/// its video (the last file also the audio that outlasts the video).
fn every_packet_in_its_file(container: &str, mime: &str, audio_lags: bool, runs: usize) {
    init();
    for run in 0..runs {
        let dir = Scratch::new(&format!("segments-{container}-{audio_lags}-{run}"));
        let files = record_h264_aac_segments(container, mime, audio_lags, &dir);
        assert!(files.len() >= 3, "{} files", files.len());
        let mut packets = 0;
        let mut boundaries_split = 0;
        for (i, file) in files.iter().enumerate() {
            let video = packet_times(file, "v");
            let audio = packet_times(file, "a");
            let name = name_of(file);
            assert!(!audio.is_empty(), "{name}: no audio");
            let at_zero = audio.iter().filter(|&&t| t == 0.0).count();
            assert!(at_zero <= 1, "{name}: {at_zero} audio packets stamped 0");
            assert!(audio[0] < 0.024, "{name}: audio starts at {}", audio[0]);
            let video_end = video.last().copied().unwrap_or(0.0) + 1.0 / 30.0;
            let audio_end = audio.last().copied().unwrap_or(0.0) + 1024.0 / 44100.0;
            assert!(
                audio_end + 0.024 >= video_end,
                "{name}: audio ends at {audio_end}, video at {video_end}"
            );
            if i + 1 < files.len() {
                assert!(
                    audio_end <= video_end + 0.024,
                    "{name}: audio ends at {audio_end}, past its video's {video_end}"
                );
                // A packet straddling the boundary is written to both files, cut.
                boundaries_split += 1;
            }
            packets += audio.len();
        }
        assert!(
            (188..=188 + boundaries_split).contains(&packets),
            "run {run}: {packets} AAC packets in the files, 188 given"
        );
    }
}

#[test]
fn h264_and_aac_in_mp4_segments_keep_every_audio_packet_in_its_file() {
    every_packet_in_its_file("mp4", "video/mp4", false, 3);
}

#[test]
fn h264_and_aac_in_matroska_segments_keep_every_audio_packet_in_its_file() {
    every_packet_in_its_file("mkv", "video/x-matroska", false, 3);
}

/// Before, a second cut closed the file that still waited for audio, and its audio
/// went to the newest file, stamped 0 (89 of 132 packets at 0).
#[test]
fn aac_lagging_the_video_by_seconds_still_goes_to_its_mp4_files() {
    every_packet_in_its_file("mp4", "video/mp4", true, 2);
}

#[test]
fn aac_lagging_the_video_by_seconds_still_goes_to_its_matroska_files() {
    every_packet_in_its_file("mkv", "video/x-matroska", true, 2);
}

/// 3 s of H.264, and audio that starts 0.5 s after it: AAC encoded before the
/// recorder (`audio` None), or raw audio the recorder encodes to `audio`.
fn record_late_audio(
    container: &str,
    mime: &str,
    audio: Option<&str>,
    dir: &Scratch,
) -> std::path::PathBuf {
    let path = dir.join(format!("late.{container}"));
    let (mime, encoded) = match audio {
        Some(codec) => (format!("{mime};codecs=avc1,{codec}"), String::new()),
        None => (mime.to_string(), format!("! {} ! aacparse", aac_encoder())),
    };
    let pipeline = launch(&format!(
        "videotestsrc num-buffers=90 ! video/x-raw,width=320,height=240,framerate=30/1 \
         ! x264enc ! h264parse ! mediarecorder name=rec mime-type=\"{mime}\" location={} \
         audiotestsrc num-buffers=100 samplesperbuffer=1024 timestamp-offset=500000000 \
         {encoded} ! rec.",
        path.display(),
    ));
    expect_eos(&pipeline, Duration::from_secs(60));
    path
}

/// Where the sound of `path`'s audio starts (s), as ffmpeg decodes it from the
/// file's start (what precedes the first packet is filled, so a late first packet, an
/// edit list and silent packets all count): the end of the silence at 0.
fn sound_starts(path: &Path) -> f64 {
    let out = ffmpeg(
        "-v info",
        path,
        "-map 0:a -af aresample=async=1:first_pts=0,silencedetect=n=-60dB:d=0.01 -f null -",
    );
    let log = String::from_utf8_lossy(&out.stderr);
    let time = |key: &str| -> Option<f64> {
        log.split(key)
            .nth(1)?
            .split_whitespace()
            .next()?
            .parse()
            .ok()
    };
    match time("silence_start: ") {
        Some(start) if start < 0.001 => {
            time("silence_end: ").unwrap_or_else(|| panic!("silent throughout: {log}"))
        }
        _ => 0.0,
    }
}

/// The sound starts 0.5 s in, in sync with the video: plus the AAC encoder's
/// priming (at most 2048 samples), and where the gap before it is filled with whole
/// silent packets, give or take half a packet (512 samples).
fn late_audio_starts_late(container: &str, mime: &str, audio: Option<&str>) {
    init();
    let dir = Scratch::new(&format!("late-{container}-{audio:?}"));
    let path = record_late_audio(container, mime, audio, &dir);
    let sound = sound_starts(&path);
    assert!(
        (0.5 - 512.0 / 44100.0..0.5 + 2560.0 / 44100.0).contains(&sound),
        "{container}: the sound starts at {sound} s, not 0.5 s"
    );
}

#[test]
fn audio_starting_after_the_video_starts_late_in_matroska() {
    late_audio_starts_late("mkv", "video/x-matroska", None);
}

/// Fragmented mp4mux starts every track at the file's start: the gap before the
/// audio is filled with silent AAC packets.
#[test]
fn audio_starting_after_the_video_starts_late_in_mp4() {
    late_audio_starts_late("mp4", "video/mp4", None);
}

/// Opus encoded by the recorder, into MP4: led in by empty Opus frames.
#[test]
fn opus_starting_after_the_video_starts_late_in_mp4() {
    late_audio_starts_late("mp4", "video/mp4", Some("opus"));
}
