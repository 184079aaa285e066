//! A file's Opus track that does not start at 0: audio that begins after the video,
//! encoded by the element or kept as it is from a file. Its first packet must decode
//! where it belongs, end to end with the next (no overlap, which ffmpeg reports as
//! "Queue input is backward in time" when it re-encodes the audio).

mod common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// One audio packet as ffprobe reads it: start and duration in seconds.
#[derive(Debug, Clone, Copy)]
struct Packet {
    pts: f64,
    duration: f64,
}

fn audio_packets(path: &Path) -> Vec<Packet> {
    let out = ffprobe(
        path,
        "-select_streams a -show_entries packet=pts_time,duration_time -of csv=p=0",
    );
    assert!(
        out.status.success(),
        "ffprobe cannot read {}",
        path.display()
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| {
            let (pts, duration) = l.split_once(',')?;
            Some(Packet {
                pts: pts.parse().ok()?,
                duration: duration.trim_end_matches(',').parse().ok()?,
            })
        })
        .collect()
}

/// Matroska stores milliseconds: times may round by one.
const ROUNDING: f64 = 0.0011;

/// The audio's packets follow each other without overlapping, ffmpeg decodes the file
/// without a word, and re-encoding its audio does not go back in time. Returns the
/// packets.
fn judge(path: &Path) -> Vec<Packet> {
    let packets = audio_packets(path);
    assert!(packets.len() > 10, "{} audio packets", packets.len());
    let overlaps: Vec<_> = packets
        .windows(2)
        .filter(|w| w[1].pts + ROUNDING < w[0].pts + w[0].duration)
        .collect();
    assert!(
        overlaps.is_empty(),
        "{}: {} audio packets start before the one before them ends, first {:?}",
        path.display(),
        overlaps.len(),
        overlaps.first()
    );
    let strict = ffmpeg("-v error -xerror", path, "-f null -");
    let said = String::from_utf8_lossy(&strict.stderr);
    assert!(
        strict.status.success() && said.trim().is_empty(),
        "ffmpeg -v error -xerror on {}: {said}",
        path.display()
    );
    let reencoded = ffmpeg("-v warning", path, "-map 0:a -c:a libvorbis -f null -");
    let said = String::from_utf8_lossy(&reencoded.stderr);
    assert!(
        !said.contains("backward in time") && !said.contains("non monotonically"),
        "re-encoding the audio of {}: {said}",
        path.display()
    );
    packets
}

fn record(description: &str) {
    let p = launch(description);
    expect_eos(&p, Duration::from_secs(60));
}

/// The encoder's first packet of audio that starts after the video, from 3 ms to half
/// a second. Its first sample kept is the audio's first: the packet decodes from
/// 6.5 ms (the encoder's priming) earlier. Within 13 ms of the file's start (where the
/// muxer cannot write it so) it begins the file at 0 instead, a gap following it.
#[test]
fn audio_starting_after_the_video_decodes_end_to_end() {
    init();
    let dir = Scratch::new("encoded");
    for offset_ms in [3.0, 10.0, 503.0] {
        let path = dir.join(format!("late-{offset_ms}.webm"));
        record(&format!(
            "mediarecorder name=r location={} \
             videotestsrc num-buffers=60 ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
             audiotestsrc num-buffers=60 samplesperbuffer=960 timestamp-offset={} ! r.",
            path.display(),
            (offset_ms * 1e6) as u64
        ));
        let packets = judge(&path);
        let decoding = if offset_ms <= 13.0 {
            -0.0065
        } else {
            (offset_ms - 6.5) / 1000.0
        };
        assert!(
            (packets[0].pts - decoding).abs() <= ROUNDING,
            "audio from {offset_ms} ms: the first packet decodes from {} s, not {decoding} s",
            packets[0].pts
        );
    }
}

/// Opus kept as it is from WebM files whose audio starts at 0.98 s, one made by
/// ffmpeg and one by GStreamer's own `webmmux`, whose first packet (20 ms, stamped
/// 13 ms) decodes 7 ms into the next: re-recorded, the packets follow each other.
/// The demuxer leaves most packets without a duration; a probe gives them theirs
/// (20 ms), as a parser does.
#[test]
fn opus_kept_as_is_from_a_file_whose_audio_starts_late() {
    init();
    let dir = Scratch::new("kept");
    let by_ffmpeg = dir.join("ffmpeg.webm");
    ffmpeg_make(
        &by_ffmpeg,
        "-f lavfi -i testsrc=size=160x120:rate=30:duration=3 \
         -itsoffset 0.98 -f lavfi -i sine=frequency=440:sample_rate=48000:duration=2 \
         -map 0:v -map 1:a -c:v libvpx -deadline realtime -cpu-used 8 -c:a libopus",
    );
    let by_gstreamer = dir.join("gstreamer.webm");
    record(&format!(
        "webmmux name=m ! filesink location={} \
         videotestsrc num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 ! \
         vp8enc deadline=1 ! m. \
         audiotestsrc num-buffers=100 samplesperbuffer=960 timestamp-offset=980000000 ! \
         opusenc ! m.",
        by_gstreamer.display()
    ));

    for source in [&by_ffmpeg, &by_gstreamer] {
        let first_source = audio_packets(source);
        let out = dir.join(format!(
            "kept-{}",
            source.file_name().unwrap().to_string_lossy()
        ));
        let p = launch(&format!(
            "filesrc location={} ! matroskademux name=d \
             mediarecorder name=r location={} \
             d.video_0 ! queue ! r. d.audio_0 ! identity name=durations ! queue ! r.",
            source.display(),
            out.display()
        ));
        let durations = p
            .by_name("durations")
            .expect("the identity named durations");
        change_leaving(&durations, |_, buffer| {
            if buffer.duration().is_none() {
                buffer.set_duration(gst::ClockTime::from_mseconds(20));
            }
        });
        expect_eos(&p, Duration::from_secs(60));
        drop(p);
        let packets = judge(&out);
        // The source's second packet is where it belongs in both sources; the first
        // decodes 20 ms before it.
        let expected = first_source[1].pts - 0.020;
        assert!(
            (packets[0].pts - expected).abs() <= ROUNDING,
            "{}: the first packet decodes from {} s, not {expected} s",
            out.display(),
            packets[0].pts
        );
    }
}

/// Opus in MP4: the decoder skips the encoder's priming (312 samples) and no more.
/// GStreamer before 1.22.4 wrote the pre-skip little-endian, read as 14,337 samples:
/// ffmpeg dropped the first 0.3 s of the audio.
#[test]
fn opus_in_mp4_skips_the_priming_only() {
    init();
    let dir = Scratch::new("mp4");
    let path = dir.join("opus.mp4");
    record(&format!(
        "mediarecorder name=r mime-type=\"video/mp4;codecs=avc1,opus\" location={} \
         videotestsrc num-buffers=90 ! video/x-raw,width=160,height=120,framerate=30/1 ! r. \
         audiotestsrc num-buffers=150 samplesperbuffer=960 ! r.",
        path.display()
    ));
    let data = std::fs::read(&path).unwrap();
    let at = data
        .windows(4)
        .position(|w| w == b"dOps")
        .expect("an Opus box (dOps)");
    // Version, channels, then the pre-skip, big-endian (Opus in ISOBMFF, 4.3.2).
    let pre_skip = u16::from_be_bytes([data[at + 6], data[at + 7]]);
    assert_eq!(pre_skip, 312, "the Opus box's pre-skip");
    // 3 s recorded: 144,000 samples, and the last packet's padding (mp4mux writes no
    // end trim): 144,648 here. With the pre-skip misread, 130,623.
    let samples = ffprobe_audio_samples(&path);
    assert!(
        (144_000..=144_960).contains(&samples),
        "ffmpeg decodes {samples} samples of 3 s of audio"
    );
}
