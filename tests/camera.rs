//! IP cameras over RTSP, recorded as users write it: a local camera
//! (`tests/camera/rtsp_camera.py`) serves live H.264/H.265 with AAC, Opus or PCMU;
//! `rtspsrc ! depay ! parse ! mediarecorder` keeps the camera's frames as they are in
//! MP4 and Matroska, and `uridecodebin uri=rtsp://...` (or H.264 into WebM) decodes
//! and encodes. Each file is judged by ffprobe and ffmpeg, and compared with
//! `ffmpeg -c copy` recording the same camera.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::*;
use gst::prelude::*;

/// Media each recording holds, in ms.
const RECORD_MS: u64 = 3000;
/// The camera's frame rate.
const FPS: u64 = 30;

/// `rtspsrc ... ! depay ! parse ! r.` for a mount named `VIDEO-AUDIO`, audio kept
/// (or decoded, for PCMU) as users write it.
fn kept_as_is(camera: &Camera, mount: &str, mime: &str, location: &Path, extra: &str) -> String {
    kept_as_is_over("tcp", camera, mount, mime, location, extra)
}

/// `kept_as_is` with rtspsrc's `protocols` (`tcp`, `udp`).
fn kept_as_is_over(
    protocols: &str,
    camera: &Camera,
    mount: &str,
    mime: &str,
    location: &Path,
    extra: &str,
) -> String {
    let (video, audio) = mount.split_once('-').unwrap_or((mount, ""));
    let video = match video {
        "h264" => "rtph264depay ! h264parse",
        "h265" => "rtph265depay ! h265parse",
        other => panic!("no video {other}"),
    };
    let audio = match audio {
        "aac" => "s. ! rtpmp4gdepay ! aacparse ! r.",
        "opus" => "s. ! rtpopusdepay ! r.",
        "pcmu" => "s. ! rtppcmudepay ! r.",
        _ => "",
    };
    format!(
        "rtspsrc location={} protocols={protocols} name=s s. ! {video} ! r. {audio} \
         mediarecorder name=r mime-type={mime} location={} {extra}",
        camera.mount(mount),
        location.display()
    )
}

/// Records with `description` until the recorder's `duration` ends it.
fn record(description: &str) -> Running {
    let pipeline = launch(description);
    expect_eos(&pipeline, Duration::from_secs(20));
    pipeline
}

/// `ffmpeg -rtsp_transport tcp -i URL -t SECONDS -c copy` into `out`, in a child.
fn ffmpeg_copy(url: &str, out: &Path) -> std::process::Child {
    Command::new("ffmpeg")
        .args([
            "-nostdin",
            "-v",
            "error",
            "-y",
            "-rtsp_transport",
            "tcp",
            "-i",
            url,
        ])
        .args([
            "-t",
            &format!("{}", RECORD_MS as f64 / 1000.0),
            "-c",
            "copy",
        ])
        .arg(out)
        .spawn()
        .expect("ffmpeg runs")
}

fn wait_child(mut child: std::process::Child, what: &str) {
    match wait_or_kill(&mut child, Duration::from_secs(20)) {
        Some(status) => assert!(status.success(), "{what} failed: {status}"),
        None => panic!("{what} did not end within 20 s"),
    }
}

/// Judges a file as a player and a post-processing tool would: the codecs and profiles
/// expected, ffmpeg decodes it without a word, and every stream's packets go strictly
/// forward. Returns the number of video frames.
fn judge(path: &Path, expected: &[&str]) -> usize {
    assert!(path.is_file(), "no {}", path.display());
    assert_eq!(ffprobe_streams(path), expected, "{}", path.display());
    let errors = ffmpeg_errors(path);
    assert!(errors.is_empty(), "{}: {errors}", path.display());
    let packets = ffprobe_packets(path);
    for stream in 0..expected.len() {
        let times = decoding_times(&packets, stream);
        assert!(
            times.len() > 10,
            "{}: stream {stream} has {} packets",
            path.display(),
            times.len()
        );
        let back: Vec<_> = times.windows(2).filter(|w| w[1] <= w[0]).collect();
        assert!(
            back.is_empty(),
            "{}: stream {stream} has {} packets not after the one before: {:?}",
            path.display(),
            back.len(),
            &back[..back.len().min(5)]
        );
    }
    packets.iter().filter(|p| p.stream == 0).count()
}

/// The times (dts, else pts) of `stream`'s packets, in file order.
fn decoding_times(packets: &[Packet], stream: usize) -> Vec<f64> {
    packets
        .iter()
        .filter(|p| p.stream == stream)
        .map(|p| p.dts.or(p.pts).expect("a packet with a time"))
        .collect()
}

/// Asserts a frame count is what `RECORD_MS` of the camera holds, and what ffmpeg
/// got recording the same camera for the same time, within 3 frames.
fn assert_frames(path: &Path, frames: usize, ffmpeg_frames: Option<usize>) {
    let expected = (RECORD_MS * FPS / 1000) as usize;
    assert!(
        frames.abs_diff(expected) <= 3,
        "{}: {frames} video frames, expected about {expected}",
        path.display()
    );
    if let Some(theirs) = ffmpeg_frames {
        assert!(
            frames.abs_diff(theirs) <= 3,
            "{}: {frames} video frames, ffmpeg -c copy got {theirs}",
            path.display()
        );
    }
}

/// The video packets (stream 0) of `path`, in file order.
fn video_packets(path: &Path) -> Vec<Packet> {
    ffprobe_packets(path)
        .into_iter()
        .filter(|p| p.stream == 0)
        .collect()
}

/// Records the camera's `mount` kept as it is into two containers, `first` (MIME type,
/// file name) beside `ffmpeg -c copy` recording the same camera, then `second`. Each
/// file holds the `expected` streams and the camera's frames; the first as many as
/// ffmpeg's.
fn kept_in_two_containers(
    name: &str,
    mount: &str,
    expected: &[&str],
    [first, second]: [(&str, &str); 2],
) {
    init();
    let dir = tmp_dir(name);
    let camera = Camera::start(&[]);
    let theirs = dir.join("ffmpeg.mkv");
    let ffmpeg = ffmpeg_copy(&camera.mount(mount), &theirs);
    let record_into = |(mime, file): (&str, &str)| {
        let path = dir.join(file);
        let duration = format!("duration={RECORD_MS}");
        record(&kept_as_is(&camera, mount, mime, &path, &duration));
        path
    };
    let ours = record_into(first);
    wait_child(ffmpeg, "ffmpeg -c copy");
    let frames = judge(&ours, expected);
    assert_frames(&ours, frames, Some(video_packets(&theirs).len()));
    let ours = record_into(second);
    let frames = judge(&ours, expected);
    assert_frames(&ours, frames, None);
}

const MP4: (&str, &str) = ("video/mp4", "cam.mp4");
const MATROSKA: (&str, &str) = ("video/x-matroska", "cam.mkv");

#[test]
fn h264_and_aac_are_kept_as_they_are_in_mp4_and_matroska() {
    kept_in_two_containers(
        "camera-h264-aac",
        "h264-aac",
        &["video,h264,Constrained Baseline", "audio,aac,LC"],
        [MP4, MATROSKA],
    );
}

#[test]
fn h265_and_opus_are_kept_as_they_are_in_mp4_and_matroska() {
    kept_in_two_containers(
        "camera-h265-opus",
        "h265-opus",
        &["video,hevc,Main", "audio,opus,unknown"],
        [MATROSKA, MP4],
    );
}

/// Plays until EOS, an error, or `timeout`; returns how it ended and the text of every
/// info and warning message posted meanwhile.
fn play_collecting(pipeline: &gst::Pipeline, timeout: Duration) -> (End, Vec<String>) {
    pipeline
        .set_state(gst::State::Playing)
        .expect("the pipeline plays");
    collect_until_end(pipeline, timeout)
}

/// `wait_end`, with the text of each info and warning, and an error's, naming the
/// element that posted it.
fn collect_until_end(pipeline: &gst::Pipeline, timeout: Duration) -> (End, Vec<String>) {
    let mut said = Vec::new();
    let mut error = None;
    let end = wait_end(pipeline, timeout, |msg| {
        let from = msg
            .src()
            .map(|s| s.path_string().to_string())
            .unwrap_or_default();
        match msg.view() {
            gst::MessageView::Error(e) => {
                error = Some(format!("{from}: {} ({:?})", e.error(), e.debug()))
            }
            gst::MessageView::Info(m) => said.push(format!("{from}: {}", m.error())),
            gst::MessageView::Warning(m) => {
                said.push(format!("{from}: {} ({:?})", m.error(), m.debug()))
            }
            _ => {}
        }
    });
    match (end, error) {
        (End::Error(_), Some(error)) => (End::Error(error), said),
        (end, _) => (end, said),
    }
}

/// Waits until `media` ns of each of the recorder's `streams` have flowed into it
/// (rtspsrc links its pads once the camera has answered).
fn wait_recorded(r: &gst::Element, streams: usize, media: u64) {
    let linked = || r.sink_pads().iter().filter(|p| p.is_linked()).count() == streams;
    assert!(
        wait_until(Duration::from_secs(10), linked),
        "the camera's {streams} streams were not linked to the recorder within 10 s"
    );
    wait_flowed(r, media, Duration::from_secs(10));
}

/// Ends a recording as an application does: EOS into the pipeline, then waits up to
/// 10 s for it on the bus.
fn end_with_eos(pipeline: &gst::Pipeline) {
    pipeline.send_event(gst::event::Eos::new());
    let end = wait_message(pipeline, Duration::from_secs(10));
    assert!(matches!(end, End::Eos(_)), "{end:?}");
}

#[test]
fn kept_video_frames_are_the_bytes_the_camera_sent() {
    init();
    let dir = tmp_dir("camera-bytes");
    let camera = Camera::start(&[]);
    for (codec, mime, ext, format, expected) in [
        (
            "h264",
            "video/mp4",
            "mp4",
            "avc",
            "video,h264,Constrained Baseline",
        ),
        ("h265", "video/x-matroska", "mkv", "hvc1", "video,hevc,Main"),
    ] {
        let sent = dir.join(format!("{codec}-sent.mkv"));
        let ours = dir.join(format!("{codec}.{ext}"));
        // What the camera sent, depayloaded, goes both to the recorder and, through a
        // tee, to a hand-made Matroska file.
        let pipeline = launch(&format!(
            "rtspsrc location={} protocols=tcp ! rtp{codec}depay ! {codec}parse ! \
             video/x-{codec},stream-format={format},alignment=au ! tee name=t \
             t. ! queue ! r. t. ! queue ! matroskamux ! filesink location={} \
             mediarecorder name=r mime-type={mime} location={}",
            camera.mount(codec),
            sent.display(),
            ours.display()
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        wait_recorded(&recorder(&pipeline), 1, 2_000 * MS);
        end_with_eos(&pipeline);
        drop(pipeline);
        judge(&ours, &[expected]);
        let sent = packet_hashes(&sent, "0:v");
        let ours = packet_hashes(&ours, "0:v");
        assert!(ours.len() >= 55, "{codec}: {} frames recorded", ours.len());
        let start = sent.iter().position(|h| *h == ours[0]).unwrap_or_else(|| {
            panic!("{codec}: the recording's first frame is not one the camera sent")
        });
        assert_eq!(
            &sent[start..(start + ours.len()).min(sent.len())],
            &ours[..],
            "{codec}: every recorded frame is the camera's, byte for byte, in order"
        );
    }
}

#[test]
fn a_decoded_camera_and_h264_or_h265_into_webm_are_encoded_as_vp8_saying_why() {
    init();
    let dir = tmp_dir("camera-webm");
    let camera = Camera::start(&[]);
    // What users type first: uridecodebin into the default WebM.
    let decoded = dir.join("decoded.webm");
    record(&format!(
        "uridecodebin uri={} name=d d. ! video/x-raw ! queue ! r. d. ! audio/x-raw ! queue ! r. \
         mediarecorder name=r duration={RECORD_MS} location={}",
        camera.mount("h264-pcmu"),
        decoded.display()
    ));
    let frames = judge(&decoded, &["video,vp8,0", "audio,opus,unknown"]);
    assert!(frames >= 80, "{frames} frames");
    // H.264 or H.265 kept up to the recorder, which WebM cannot store: decoded, encoded
    // as VP8, with a message saying why; the Opus beside it kept as it is.
    for (codec, name) in [("h264", "H.264"), ("h265", "H.265")] {
        let depayloaded = dir.join(format!("{codec}-depayloaded.webm"));
        let pipeline = launch(&format!(
            "rtspsrc location={} protocols=tcp name=s s. ! rtp{codec}depay ! {codec}parse ! r. \
             s. ! rtpopusdepay ! r. mediarecorder name=r duration={RECORD_MS} location={}",
            camera.mount(&format!("{codec}-opus")),
            depayloaded.display()
        ));
        let (end, said) = play_collecting(&pipeline, Duration::from_secs(20));
        assert!(matches!(end, End::Eos(_)), "{codec}: {end:?}");
        let why = format!("{name} cannot be stored in WebM");
        assert!(
            said.iter().any(|m| m.contains(&why) && m.contains("VP8")),
            "no message says why {name} is re-encoded: {said:?}"
        );
        drop(pipeline);
        let frames = judge(&depayloaded, &["video,vp8,0", "audio,opus,unknown"]);
        assert!(frames >= 80, "{codec}: {frames} frames");
    }
    // The issue's own line, without a camera.
    let h264 = dir.join("h264.webm");
    let pipeline = launch(&format!(
        "videotestsrc is-live=true num-buffers=45 ! x264enc tune=zerolatency ! h264parse ! \
         mediarecorder location={}",
        h264.display()
    ));
    let (end, said) = play_collecting(&pipeline, Duration::from_secs(20));
    assert!(matches!(end, End::Eos(_)), "{end:?}");
    assert!(
        said.iter()
            .any(|m| m.contains("H.264 cannot be stored in WebM")),
        "{said:?}"
    );
    drop(pipeline);
    assert_eq!(judge(&h264, &["video,vp8,0"]), 45);
}

#[test]
fn segments_cut_at_the_cameras_keyframes_and_each_plays_alone() {
    init();
    let dir = tmp_dir("camera-segments");
    // Keyframes every 1.5 s; files asked to last 1 s: each is cut at the next keyframe.
    let camera = Camera::start(&["--keyframes", "45"]);
    for (mount, mime, ext, video) in [
        ("h265-aac", "video/mp4", "mp4", "video,hevc,Main"),
        (
            "h264-opus",
            "video/x-matroska",
            "mkv",
            "video,h264,Constrained Baseline",
        ),
    ] {
        let pattern = dir.join(format!("{mount}-%03d.{ext}"));
        record(&kept_as_is(
            &camera,
            mount,
            mime,
            &pattern,
            "max-file-duration=1000 duration=4000",
        ));
        let files = files_in(&dir, |name| name.starts_with(mount));
        assert!(files.len() >= 3, "{files:?}");
        let audio = if mount.ends_with("aac") {
            "audio,aac,LC"
        } else {
            "audio,opus,unknown"
        };
        let mut total = 0;
        for (i, file) in files.iter().enumerate() {
            // Each file alone: its parameter sets in its header, a keyframe first.
            let frames = judge(file, &[video, audio]);
            let first = video_packets(file).remove(0);
            assert!(
                first.keyframe,
                "{} starts with a delta frame",
                file.display()
            );
            if i + 1 < files.len() {
                assert!(
                    frames.abs_diff(45) <= 1,
                    "{}: {frames} frames, not the camera's 45 between keyframes",
                    file.display()
                );
            }
            total += frames;
        }
        assert!(total.abs_diff(120) <= 3, "{total} frames in {files:?}");
    }
}

#[test]
fn a_camera_that_goes_away_ends_the_file_and_one_that_comes_back_starts_the_next() {
    init();
    let dir = tmp_dir("camera-reconnect");
    let mut camera = Camera::start(&[]);
    let port = camera.port();
    let description = kept_as_is(
        &camera,
        "h264-aac",
        "video/mp4",
        &dir.join("cam-%05d.mp4"),
        "",
    );
    let pipeline = launch(&description);
    let r = recorder(&pipeline);
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_recorded(&r, 2, 2_000 * MS);
    camera.stop();
    // rtspsrc says the camera went away, naming itself: a warning ("The server closed
    // the connection") and the end of the stream, or, when the connection is reset, an
    // error ("Could not receive message"). Either way the application sets the
    // pipeline to NULL, and the file is finalized (at the end of stream, or on the way
    // down).
    let (end, said) = collect_until_end(&pipeline, Duration::from_secs(10));
    let told = match &end {
        End::Eos(_) => said
            .iter()
            .find(|m| m.contains("GstRTSPSrc:s") && m.contains("closed the connection"))
            .cloned(),
        End::Error(e) => Some(e.clone()),
        End::Timeout => None,
    };
    let told =
        told.unwrap_or_else(|| panic!("nothing says the camera went away: {end:?} {said:?}"));
    assert!(
        told.contains("GstRTSPSrc:s") && told.contains("Could not read from resource"),
        "{told}"
    );
    pipeline.set_state(gst::State::Null).unwrap();
    let first = dir.join("cam-00000.mp4");
    let frames = judge(&first, &["video,h264,Constrained Baseline", "audio,aac,LC"]);
    assert!(frames >= 55, "{frames} frames before the camera went away");
    let first_bytes = std::fs::read(&first).unwrap();

    // The application's part: once the pipeline is down, a new one from the same
    // description plays once the camera answers again (here at
    // once; an application retries every few seconds, as a shell loop around
    // gst-launch-1.0 does). The pattern names the next file after the last one.
    drop(pipeline);
    let _camera = Camera::start_on(port, &[]);
    let pipeline = launch(&description);
    pipeline.set_state(gst::State::Playing).unwrap();
    wait_recorded(&recorder(&pipeline), 2, 1_500 * MS);
    end_with_eos(&pipeline);
    drop(pipeline);
    let second = dir.join("cam-00001.mp4");
    let frames = judge(
        &second,
        &["video,h264,Constrained Baseline", "audio,aac,LC"],
    );
    assert!(frames >= 40, "{frames} frames after the camera came back");
    assert_eq!(
        std::fs::read(&first).unwrap(),
        first_bytes,
        "the first file is left as it was"
    );
}

/// Runs of each lossy case: the issue saw video lost in 3 of 4.
const LOSSY_RUNS: usize = 4;
/// The network: 5 % of RTP packets lost, 5 % delayed 10-40 ms (reordered).
const LOSSY: [&str; 4] = ["--loss", "5", "--reorder", "5"];

/// Every video packet's time (pts, else dts) in `path`, in file order.
fn video_times(path: &Path) -> Vec<f64> {
    video_packets(path)
        .iter()
        .filter_map(|p| p.pts.or(p.dts))
        .collect()
}

/// Video frames spread over a recording of `RECORD_MS`: the first within 0.5 s of
/// its start, the last within 0.5 s of its end, and no gap longer than the camera's
/// keyframe interval (1 s). A picture whose packets the network lost can cost the
/// frames up to the next keyframe (GStreamer 1.26's depayloader and decoder skip
/// them: 14 frames, 1.5 s to 2.0 s, in one run), never more: a recorder that loses
/// the video loses all of it after the first loss. At least half the camera's frames.
/// Returns (frames, first, last, widest gap) in frames and seconds.
fn assert_video_spread(path: &Path) -> (usize, f64, f64, f64) {
    let mut times = video_times(path);
    times.sort_by(f64::total_cmp);
    let end = RECORD_MS as f64 / 1000.0;
    let (Some(&first), Some(&last)) = (times.first(), times.last()) else {
        panic!("{}: no video frame", path.display());
    };
    let gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    let least = (RECORD_MS * FPS / 1000 / 2) as usize;
    let keyframe_interval = 1.0 + 0.5 / FPS as f64;
    assert!(
        times.len() >= least && first < 0.5 && last > end - 0.5 && gap < keyframe_interval,
        "{}: {} video frames from {first:.3} s to {last:.3} s, widest gap {gap:.3} s \
         (expected {least} or more over {end} s, no gap of a keyframe interval)",
        path.display(),
        times.len()
    );
    (times.len(), first, last, gap)
}

/// Plays lossy run `run` to its EOS, within 20 s: no error, and no message of a
/// branch without input or of a stream that broke.
fn play_lossy_run(pipeline: &gst::Pipeline, run: usize) {
    let (end, said) = play_collecting(pipeline, Duration::from_secs(20));
    assert!(
        matches!(end, End::Eos(_)),
        "run {run}: {end:?}, messages: {said:?}"
    );
    assert!(
        !said
            .iter()
            .any(|m| m.contains("gets no stream") || m.contains("Internal data stream error")),
        "run {run}: {said:?}"
    );
}

/// The lossy camera: `uridecodebin uri=rtsp://...` over UDP (rtspsrc's
/// default) with 5 % loss and 5 % reordering, into the default WebM, written as the
/// issue's user did (`d. ! queue ! r.` twice: each queue is fed once uridecodebin
/// exposes a stream, so until then it looks like a branch that has no input). The
/// decoded video shows up late (after lost packets, at the next keyframe): it is waited for,
/// and every run keeps its video, ends at its duration with EOS and no error. The
/// camera's jitter buffer holds packets up to its 2 s latency while waiting for lost
/// ones: the recording waits for them before ending, so its last second is kept.
#[test]
fn a_lossy_camera_over_udp_keeps_its_video_in_every_run() {
    init();
    let dir = tmp_dir("camera-lossy-decoded");
    let camera = Camera::start(&LOSSY);
    let mut figures = Vec::new();
    for run in 0..LOSSY_RUNS {
        let webm = dir.join(format!("run{run}.webm"));
        let pipeline = launch(&format!(
            "uridecodebin uri={} name=d d. ! queue ! r. d. ! queue ! r. \
             mediarecorder name=r duration={RECORD_MS} location={}",
            camera.mount("h264-aac"),
            webm.display()
        ));
        play_lossy_run(&pipeline, run);
        assert_eq!(
            pipeline.set_state(gst::State::Null),
            Ok(gst::StateChangeSuccess::Success),
            "run {run}: the pipeline goes down cleanly"
        );
        drop(pipeline);
        assert_eq!(
            ffprobe_streams(&webm),
            ["video,vp8,0", "audio,opus,unknown"],
            "run {run}: {}",
            webm.display()
        );
        figures.push(assert_video_spread(&webm));
    }
    eprintln!(
        "lossy camera, decoded into WebM: (frames, first s, last s, widest gap s) {figures:?}"
    );
}

/// Whether a line ffmpeg printed is about decoding a picture (slices lost on the
/// network), not about the file (timestamps, the container's structure).
fn is_decode_error(line: &str) -> bool {
    line.ends_with("corrupt decoded frame in stream 0")
        || line.starts_with("[h264 @")
        // ffmpeg 7 (Debian 13) names the decoder inside the line instead.
        || line.contains("[dec:h264 @")
        || line.starts_with("Error while decoding stream #0:0")
        || line.contains("Invalid data found when processing input")
        // ffmpeg 7 under -xerror, when the first picture is a damaged one: its null
        // output then never opens, and it says so.
        || line.starts_with("[vost#0:0/wrapped_avframe @")
        || line.starts_with("[out#0/null @")
}

/// The lossy camera kept as is (`rtspsrc protocols=udp ! rtph264depay ! h264parse`,
/// AAC beside it) into MP4: every run is a well-formed file over the whole recording.
/// Pictures whose slices the network lost are the camera's own (ffmpeg may say so
/// decoding them), but nothing about the file: each stream's timestamps go strictly
/// forward.
#[test]
fn a_lossy_camera_kept_as_it_is_gives_well_formed_files() {
    init();
    let dir = tmp_dir("camera-lossy-kept");
    let camera = Camera::start(&LOSSY);
    let mut figures = Vec::new();
    let mut clean = 0;
    for run in 0..LOSSY_RUNS {
        let mp4 = dir.join(format!("run{run}.mp4"));
        let pipeline = launch(&kept_as_is_over(
            "udp",
            &camera,
            "h264-aac",
            "video/mp4",
            &mp4,
            &format!("duration={RECORD_MS}"),
        ));
        play_lossy_run(&pipeline, run);
        drop(pipeline);
        let expected = ["video,h264,Constrained Baseline", "audio,aac,LC"];
        assert_eq!(ffprobe_streams(&mp4), expected, "run {run}");
        let errors = ffmpeg_errors(&mp4);
        if errors.is_empty() {
            clean += 1;
        }
        let not_decoding: Vec<&str> = errors.lines().filter(|l| !is_decode_error(l)).collect();
        assert!(
            not_decoding.is_empty(),
            "run {run}: ffmpeg says more than a damaged picture: {errors}"
        );
        let packets = ffprobe_packets(&mp4);
        for stream in 0..expected.len() {
            let times = decoding_times(&packets, stream);
            let back = times.windows(2).filter(|w| w[1] <= w[0]).count();
            assert_eq!(
                back, 0,
                "run {run}: stream {stream} steps back {back} times"
            );
        }
        figures.push(assert_video_spread(&mp4));
    }
    eprintln!(
        "lossy camera, kept as is in MP4: {clean} of {LOSSY_RUNS} decode without a word; \
         (frames, first s, last s, widest gap s) {figures:?}"
    );
}
