//! A recorder run as a service and configured by hand (issue 23, items 7-11): values
//! typed by mistake, a timed recording under an encoder that cannot keep up, stopping
//! with SIGTERM, the end of a timed recording of a file, and MP4 `dataavailable`.
//!
//! What can hang runs in a child process with a deadline (`gst-launch-1.0`, or this
//! test binary running one test), so every case ends by itself.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use gst::prelude::*;

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
    // NaN, which fails the comparison below, where ffprobe reads no duration.
    let duration = |path: &Path| ffprobe_duration(path).unwrap_or(f64::NAN);
    let (file_frames, file_duration) = (ffprobe_frames(&path), duration(&path));
    let (joined_frames, joined_duration) = (ffprobe_frames(&joined_path), duration(&joined_path));
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

// ---------------------------------------------------------------------------------
// Running gst-launch-1.0 as users do, with a deadline
// ---------------------------------------------------------------------------------

/// How a child ran: its exit (None: killed at the deadline) and what it printed.
struct Ran {
    status: Option<ExitStatus>,
    output: String,
    took: Duration,
}

impl Ran {
    #[track_caller]
    fn assert_ended(&self, what: &str) {
        let tail: Vec<&str> = self.output.lines().rev().take(12).collect();
        assert!(
            self.status.is_some(),
            "{what}: still running after {:.1?}, killed. Last output:\n{}",
            self.took,
            tail.into_iter().rev().collect::<Vec<_>>().join("\n")
        );
    }
}

/// Starts `gst-launch-1.0 -e ARGS`; after `interrupt_after` sends it `signal` (as
/// Ctrl+C or a service manager does), then waits at most `limit` in all.
fn run_launch(
    args: &[String],
    log: &Path,
    interrupt: Option<(Duration, libc::c_int)>,
    limit: Duration,
) -> Ran {
    let started = Instant::now();
    let mut child = gst_launch()
        .args(args)
        .stdout(std::fs::File::create(log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(log).unwrap(),
        ))
        .spawn()
        .expect("gst-launch-1.0 runs");
    if let Some((after, signal)) = interrupt {
        let exited = wait_until(after, || child.try_wait().unwrap().is_some());
        if !exited {
            // SAFETY: signals the child this test started and has not reaped yet.
            unsafe { libc::kill(child.id() as libc::pid_t, signal) };
        }
    }
    let status = wait_or_kill(&mut child, limit.saturating_sub(started.elapsed()));
    Ran {
        status,
        output: std::fs::read_to_string(log).unwrap_or_default(),
        took: started.elapsed(),
    }
}

// ---------------------------------------------------------------------------------
// 7. Values typed by mistake
// ---------------------------------------------------------------------------------

/// A bitrate below what the encoder takes (bit/s typed where kbit/s was meant) used to
/// record nothing and hang `gst-launch-1.0 -e`: the encoder made no frame, so the
/// pipeline never reached PLAYING. Now the rate is raised to the encoder's least, a
/// warning names the property, the value and the rate used, and the file plays.
#[test]
fn bitrates_below_the_encoder_range_record_and_warn() {
    init();
    let dir = tmp_dir("service-low-bitrates");
    let cases = [
        ("video-bits-per-second=500", "video-bits-per-second=500"),
        ("video-bits-per-second=1", "video-bits-per-second=1"),
        (
            "bits-per-second=1",
            "bits-per-second=1 gives the video 1 bit/s",
        ),
    ];
    std::thread::scope(|scope| {
        let runs: Vec<_> = cases
            .iter()
            .enumerate()
            .map(|(i, (setting, _))| {
                let dir = &dir;
                scope.spawn(move || {
                    let out = dir.join(format!("low{i}.webm"));
                    let mut args = words(&format!("-e mediarecorder name=r {setting}"));
                    args.push(format!("location={}", out.display()));
                    args.extend(words(
                        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 \
                         ! r. audiotestsrc is-live=true ! r.",
                    ));
                    let log = dir.join(format!("low{i}.log"));
                    let ran = run_launch(
                        &args,
                        &log,
                        Some((Duration::from_secs(3), libc::SIGINT)),
                        Duration::from_secs(15),
                    );
                    (ran, out)
                })
            })
            .collect();
        for ((setting, warning), run) in cases.iter().zip(runs) {
            let (ran, out) = run.join().unwrap();
            ran.assert_ended(setting);
            assert_eq!(ran.status.and_then(|s| s.code()), Some(0), "{setting}");
            assert!(
                ran.output.contains(warning) && ran.output.contains("at 1000 bit/s"),
                "{setting}: no warning naming it and the rate used in:\n{}",
                ran.output
            );
            let frames = ffprobe_frames(&out);
            println!("{setting}: {frames} frames in {:.1?}", ran.took);
            assert!(
                frames >= 30,
                "{setting}: {frames} frames in {}",
                out.display()
            );
            assert!(
                webm_index_of(&out).duration_ms.is_some(),
                "{setting}: finalized"
            );
        }
    });
}

/// A `duration` shorter than one frame records that one frame: a file that plays, and
/// a `file-closed` that describes it (it used to announce a file it had removed).
#[test]
fn a_duration_shorter_than_a_frame_records_one_frame() {
    init();
    let dir = tmp_dir("service-short-duration");
    for ms in [1u64, 10] {
        let path = dir.join(format!("d{ms}.webm"));
        let p = launch(&format!(
            "mediarecorder name=r duration={ms} location={} \
             videotestsrc ! video/x-raw,width=320,height=240,framerate=30/1 ! r. \
             audiotestsrc ! r.",
            path.display()
        ));
        let r = recorder(&p);
        let closed = watch_closed(&r);
        expect_eos(&p, Duration::from_secs(20));
        drop(p);
        let closed = closed.lock().unwrap().clone();
        assert_eq!(closed.len(), 1, "duration={ms}: {closed:?}");
        let info = &closed[0];
        let size = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("duration={ms}: no file {}: {e}", path.display()))
            .len();
        assert_eq!(info.get::<u64>("bytes").unwrap(), size, "{info}");
        assert_eq!(info.get::<u64>("frames").unwrap(), 1, "{info}");
        let decoded = decode(&path);
        assert_eq!(decoded.frames(), 1, "duration={ms}");
        let audio = ffprobe_audio_samples(&path);
        // One frame of 33.3 ms: 1,600 samples at 48 kHz, less the packet cut cleanly.
        assert!(audio <= 1_600, "duration={ms}: {audio} audio samples");
    }
}

/// `pre-record` at its maximum while armed keeps at most `ring::MAX_BYTES` (64 MiB)
/// of encoded media, whole GOPs, and says so once. 1 MiB frames make it quick.
#[test]
fn pre_record_memory_is_bounded() {
    init();
    const MIB: usize = 1 << 20;
    let p = launch(
        "appsrc name=src format=time caps=video/x-vp8,width=320,height=240,framerate=30/1 \
         ! mediarecorder name=r autostart=false pre-record=18446744073708",
    );
    let r = recorder(&p);
    let src = app_src(&p, "src");
    assert_eq!(r.property::<u64>("pre-record"), 18_446_744_073_708);
    let warnings = Arc::new(Mutex::new(Vec::new()));
    let seen = warnings.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Warning(w) = msg.view() {
            seen.lock().unwrap().push(w.error().to_string());
        }
        gst::BusSyncReply::Pass
    });
    for i in 0..100u64 {
        let mut buffer = gst::Buffer::with_size(MIB).unwrap();
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_nseconds(i * 33_333_333));
            b.set_duration(gst::ClockTime::from_nseconds(33_333_333));
            if i % 10 != 0 {
                b.set_flags(gst::BufferFlags::DELTA_UNIT);
            }
        }
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    // EOS reaches the bus once the stage has taken every frame.
    expect_eos(&p, Duration::from_secs(20));
    let held = r.property::<u64>("pre-record-bytes") as usize;
    println!("pre-record holds {} MiB of 100 MiB pushed", held / MIB);
    assert!(held <= 64 * MIB, "pre-record holds {held} bytes");
    assert!(
        held >= 50 * MIB,
        "the newest whole GOPs are kept: {held} bytes"
    );
    let warnings = warnings.lock().unwrap().clone();
    let warned = warnings.iter().filter(|w| w.contains("pre-record")).count();
    assert_eq!(warned, 1, "one warning names pre-record: {warnings:?}");
}

// ---------------------------------------------------------------------------------
// 9. Stopped as a service
// ---------------------------------------------------------------------------------

/// The settings of `examples/mediarecorder@.service` this test uses, read as systemd
/// reads them.
struct Unit {
    exec_start: Vec<String>,
    kill_signal: libc::c_int,
    stop_timeout: Duration,
}

/// Splits a command line as systemd does: words separated by spaces, single or double
/// quotes keeping one word whole.
fn systemd_words(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    out.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        out.push(word);
    }
    out
}

/// Reads the unit, with its specifiers expanded for `instance` (`%i`, `%%`).
fn read_unit(instance: &str) -> Unit {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/mediarecorder@.service");
    let text = std::fs::read_to_string(&path).expect("the example unit exists");
    let setting = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key}=")))
            .unwrap_or_else(|| panic!("{} sets no {key}", path.display()))
            .trim()
            .replace("%i", instance)
            .replace("%%", "%")
    };
    let kill_signal = match setting("KillSignal").as_str() {
        "SIGINT" => libc::SIGINT,
        "SIGTERM" => libc::SIGTERM,
        other => panic!("KillSignal={other}: not one this test knows"),
    };
    let stop_timeout = Duration::from_secs(setting("TimeoutStopSec").parse().unwrap());
    Unit {
        exec_start: systemd_words(&setting("ExecStart")),
        kill_signal,
        stop_timeout,
    }
}

/// Runs the unit's `ExecStart` with a live test pattern as `SOURCE`, lets it record
/// for `record_for`, then sends `signal` to its main process as `systemctl stop` does
/// (the unit's `KillSignal`). Returns how it ended and the files it left.
fn run_unit(name: &str, signal: libc::c_int, record_for: Duration) -> (Ran, Vec<PathBuf>) {
    let dir = tmp_dir(name);
    let unit = read_unit("cam1");
    let log = dir.join("journal.log");
    let started = Instant::now();
    let mut child = with_plugin_env(&mut Command::new(&unit.exec_start[0]))
        .env_remove("G_DEBUG")
        .args(&unit.exec_start[1..])
        .env(
            "SOURCE",
            "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1",
        )
        .env("FOLDER", &dir)
        .stdout(std::fs::File::create(&log).unwrap())
        .stderr(Stdio::from(
            std::fs::OpenOptions::new().append(true).open(&log).unwrap(),
        ))
        .spawn()
        .expect("the unit's ExecStart runs");
    let webm = |dir: &Path| files_with_extension(dir, "webm");
    // Recording: a file with data in it.
    let recording = wait_until(Duration::from_secs(10), || {
        webm(&dir)
            .iter()
            .any(|f| std::fs::metadata(f).is_ok_and(|m| m.len() > 10_000))
    });
    assert!(
        recording,
        "{name}: no recording after 10 s: {}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
    std::thread::sleep(record_for);
    // SAFETY: signals the child this test started and has not reaped yet.
    unsafe { libc::kill(child.id() as libc::pid_t, signal) };
    let status = wait_or_kill(&mut child, unit.stop_timeout);
    let ran = Ran {
        status,
        output: std::fs::read_to_string(&log).unwrap_or_default(),
        took: started.elapsed(),
    };
    let markers: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".mediarecorder-partial"))
        .collect();
    let mut files = webm(&dir);
    if !markers.is_empty() {
        files.push(dir.join(format!("markers: {}", markers.join(", "))));
    }
    (ran, files)
}

/// `systemctl stop` on the example unit: the signal it sends (the unit's KillSignal,
/// SIGINT) makes gst-launch-1.0 -e finalize the file at once: Duration and Cues, no
/// journal marker left, every frame decodes.
#[test]
fn the_example_unit_finalizes_on_systemctl_stop() {
    init();
    let unit = read_unit("cam1");
    assert_eq!(
        unit.kill_signal,
        libc::SIGINT,
        "gst-launch-1.0 -e ends cleanly on SIGINT only"
    );
    let (ran, files) = run_unit(
        "service-unit-stop",
        unit.kill_signal,
        Duration::from_secs(2),
    );
    ran.assert_ended("the unit's ExecStart after its KillSignal");
    assert_eq!(
        ran.status.and_then(|s| s.code()),
        Some(0),
        "exit after KillSignal:\n{}",
        ran.output
    );
    assert_eq!(files.len(), 1, "one file and no marker: {files:?}");
    let file = &files[0];
    let name = name_of(file);
    assert!(
        name.starts_with("cam1-20") && name.len() == "cam1-20261206-014500.webm".len(),
        "named by the instance and the wall clock: {name}"
    );
    let index = webm_index_of(file);
    let duration = index.duration_ms.expect("finalized: a Duration");
    assert!(!index.cue_times_ms.is_empty(), "finalized: Cues");
    let frames = ffprobe_frames(file);
    println!(
        "stopped after {:.1?}: {name}, {duration:.0} ms, {frames} frames, cues {:?}",
        ran.took, index.cue_times_ms
    );
    assert!(duration >= 2_000.0, "{duration} ms recorded");
    let expected = (duration / 1000.0 * 30.0).round() as u64;
    assert!(
        frames.abs_diff(expected) <= 1,
        "{frames} frames in {duration} ms"
    );
}

// ---------------------------------------------------------------------------------
// 10. After the duration: EOS or FLUSHING upstream, never an error
// ---------------------------------------------------------------------------------

/// A source pad of the test's own, linked to the recorder's `pad`, that pushes raw
/// media with `push` and sees what the recorder returns.
fn feeding_pad(recorder: &gst::Element, pad: &str, caps: &str) -> gst::Pad {
    let src = gst::Pad::builder(gst::PadDirection::Src)
        .name(format!("feed-{pad}"))
        .build();
    src.set_active(true).unwrap();
    let sink = recorder.request_pad_simple(pad).unwrap();
    src.link(&sink).unwrap();
    assert!(src.push_event(gst::event::StreamStart::new(pad)));
    assert!(src.push_event(gst::event::Caps::new(&caps.parse::<gst::Caps>().unwrap())));
    let segment = gst::FormattedSegment::<gst::ClockTime>::new();
    assert!(src.push_event(gst::event::Segment::new(&segment)));
    src
}

/// Makes the encoder `factory` inside `r` fail every frame (GST_FLOW_ERROR, as an
/// encoder that already drained or is being shut down returns) once the recording has
/// started and ended: the path by which an error flow reached a demuxer's queue.
fn fail_encoder_after_the_end(r: &gst::Element, factory: &str, started: Arc<AtomicBool>) {
    let encoder =
        element_inside(r, factory).unwrap_or_else(|| panic!("no {factory} in the recorder"));
    let recorder = r.clone();
    encoder
        .static_pad("sink")
        .unwrap()
        .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if started.load(Ordering::SeqCst) && state_of(&recorder) == "inactive" {
                drop(info.take_buffer());
                info.flow_res = Err(gst::FlowError::Error);
                return gst::PadProbeReturn::Handled;
            }
            gst::PadProbeReturn::Ok
        });
}

/// What each push of raw media past a recorder's `duration` returned: two threads push
/// 3 s of video and audio into `duration=500`, as a demuxer's decoders do, and the
/// pipeline is set to NULL as soon as it posts EOS, while they still push. With
/// `failing`, the encoders fail every frame once the recording has ended. Returns the
/// flows that were neither OK, EOS nor FLUSHING, and how the pipeline ended.
fn push_past_the_duration(name: &str, failing: bool) -> (Vec<String>, String) {
    let dir = tmp_dir(name);
    let pipeline = gst::Pipeline::new();
    let r = gst::ElementFactory::make("mediarecorder")
        .property("duration", 500u64)
        .property("location", dir.join("out.webm").to_str().unwrap())
        .build()
        .unwrap();
    pipeline.add(&r).unwrap();
    let started = Arc::new(AtomicBool::new(false));
    let s = started.clone();
    r.connect("start", false, move |_| {
        s.store(true, Ordering::SeqCst);
        None
    });
    let video = feeding_pad(
        &r,
        "video_%u",
        "video/x-raw,format=I420,width=64,height=48,framerate=30/1",
    );
    let audio = feeding_pad(
        &r,
        "audio_%u",
        "audio/x-raw,format=S16LE,layout=interleaved,rate=48000,channels=2,channel-mask=(bitmask)0x3",
    );
    let running = Running(pipeline);
    running.set_state(gst::State::Playing).unwrap();
    let bad = Arc::new(Mutex::new(Vec::new()));
    let push = |pad: gst::Pad, size: usize, step: u64, count: u64, encoder: &'static str| {
        let bad = bad.clone();
        let r = r.clone();
        let started = started.clone();
        move || {
            for i in 0..count {
                let mut b = gst::Buffer::with_size(size).unwrap();
                {
                    let b = b.get_mut().unwrap();
                    b.set_pts(gst::ClockTime::from_nseconds(i * step));
                    b.set_duration(gst::ClockTime::from_nseconds(step));
                }
                match pad.push(b) {
                    Ok(_) => {}
                    Err(gst::FlowError::Eos | gst::FlowError::Flushing) => {}
                    Err(e) => {
                        bad.lock().unwrap().push(format!(
                            "{} buffer {i} ({} ms): {e:?}",
                            pad.name(),
                            i * step / 1_000_000
                        ));
                    }
                }
                if i == 0 && failing {
                    // The branch exists once the first frame went in.
                    fail_encoder_after_the_end(&r, encoder, started.clone());
                }
            }
            let _ = pad.push_event(gst::event::Eos::new());
        }
    };
    let a = std::thread::spawn(push(audio, 960 * 4, 20_000_000, 150, "opusenc"));
    let v = std::thread::spawn(push(video, 64 * 48 * 3 / 2, 33_333_333, 90, "vp8enc"));
    let end = wait_message(&running, Duration::from_secs(20));
    let _ = running.set_state(gst::State::Null);
    v.join().unwrap();
    a.join().unwrap();
    let bad = bad.lock().unwrap().clone();
    (bad, format!("{end:?}"))
}

/// After `duration`, what upstream gets from the recorder's pads is OK, EOS or
/// FLUSHING, never an error: also when an element of a branch fails a frame then, and
/// while the pipeline goes to NULL under the pushing threads.
#[test]
fn pushing_past_the_duration_sees_no_error() {
    init();
    for run in 0..4 {
        let failing = run % 2 == 0;
        let (bad, end) = push_past_the_duration("service-past-duration", failing);
        println!("run {run} (encoders failing after the end: {failing}): {end}, {bad:?}");
        assert!(end.starts_with("Eos"), "run {run}: {end}");
        assert!(bad.is_empty(), "run {run}: upstream got errors: {bad:?}");
    }
}

// ---------------------------------------------------------------------------------
// 8. A timed recording under an encoder that cannot keep up
// ---------------------------------------------------------------------------------

/// A timed live recording of 3 s made slow: at the encoder (`slow_encoder`: 100 ms a
/// frame, a third of the live rate, as a machine under severe load) or before the
/// recorder (an `identity sleep-time=100000`: frames arrive later and later, so every
/// one after the first second and a half is dropped as too late and nothing past the
/// end ever comes). Either way the recording ends at its duration, the pipeline
/// reaches EOS by itself, the file is finalized, and `dropped` is exactly the frames
/// of the 3 s that are not in the file.
fn slow_timed_recording(name: &str, slow_encoder: bool) {
    init();
    let dir = tmp_dir(name);
    let path = dir.join("slow.webm");
    let before = if slow_encoder {
        ""
    } else {
        "! identity sleep-time=100000"
    };
    let p = launch(&format!(
        "videotestsrc is-live=true ! video/x-raw,width=320,height=240,framerate=30/1 {before} \
         ! mediarecorder name=r duration=3000 location={}",
        path.display()
    ));
    let r = recorder(&p);
    let (events, _chunks) = Events::watch(&r);
    let stop = Arc::new(Mutex::new(None));
    let s = stop.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let Some(st) = msg.structure().filter(|s| s.name() == "mediarecorder-stop") {
            *s.lock().unwrap() = Some(st.to_owned());
        }
        gst::BusSyncReply::Pass
    });
    p.set_state(gst::State::Playing).unwrap();
    assert!(events.wait_for("start", 1, Duration::from_secs(10)));
    if slow_encoder {
        slow_down(&r, "vp8enc", Duration::from_millis(100));
    }
    let started = Instant::now();
    match wait_message(&p, Duration::from_secs(15)) {
        End::Eos(_) => {}
        other => panic!("{name}: a 3 s recording did not end by itself within 15 s: {other:?}"),
    }
    let took = started.elapsed();
    drop(p);
    let stop = stop
        .lock()
        .unwrap()
        .clone()
        .expect("a mediarecorder-stop message");
    let dropped = stop.get::<u64>("dropped").unwrap();
    let frames = ffprobe_frames(&path);
    let duration = webm_index_of(&path)
        .duration_ms
        .expect("the file is finalized");
    println!(
        "{name}: ended after {took:.1?}: {frames} frames, {dropped} dropped, {duration:.0} ms"
    );
    assert!(
        dropped > 20,
        "{name}: the encoder kept up? {dropped} dropped"
    );
    assert_eq!(
        frames + dropped,
        90,
        "{name}: {frames} frames in the file, {dropped} dropped"
    );
    assert!(duration <= 3_000.0, "{name}: {duration} ms");
}

#[test]
fn a_timed_recording_ends_on_time_under_a_slow_encoder() {
    slow_timed_recording("service-slow-encoder", true);
}

#[test]
fn a_timed_recording_ends_on_time_when_nothing_past_its_end_comes() {
    slow_timed_recording("service-slow-source", false);
}

/// The case that once ended in "Internal data stream error" (1 run in 12): a 5 s
/// VP9+Opus WebM played through `uridecodebin` into `duration=2000`, run 6 times, 3 at
/// once. Every run exits 0 by itself with a finalized 2 s file.
#[test]
fn a_timed_recording_of_a_file_ends_cleanly_every_time() {
    init();
    let dir = tmp_dir("service-file-duration");
    let source = dir.join("vp9-opus-5s.webm");
    ffmpeg_make(
        &source,
        "-f lavfi -i testsrc2=size=320x240:rate=30:duration=5 \
         -f lavfi -i sine=frequency=440:sample_rate=48000:duration=5 \
         -ac 2 -c:v libvpx-vp9 -deadline realtime -cpu-used 8 -c:a libopus -f webm",
    );
    for batch in 0..2 {
        std::thread::scope(|scope| {
            let runs: Vec<_> = (0..3)
                .map(|k| {
                    let (dir, source) = (&dir, &source);
                    scope.spawn(move || {
                        let out = dir.join(format!("cut-{batch}-{k}.webm"));
                        let mut args = words("-e uridecodebin");
                        args.push(format!("uri=file://{}", source.display()));
                        args.extend(words("name=d mediarecorder name=r duration=2000"));
                        args.push(format!("location={}", out.display()));
                        args.extend(words("d. ! queue ! r. d. ! queue ! r."));
                        let log = dir.join(format!("cut-{batch}-{k}.log"));
                        (run_launch(&args, &log, None, Duration::from_secs(60)), out)
                    })
                })
                .collect();
            for run in runs {
                let (ran, out) = run.join().unwrap();
                let what = out.display().to_string();
                ran.assert_ended(&what);
                assert_eq!(
                    ran.status.and_then(|s| s.code()),
                    Some(0),
                    "{what}: {}",
                    ran.output
                );
                let duration = webm_index_of(&out).duration_ms.expect("finalized");
                assert!((duration - 2_000.0).abs() <= 34.0, "{what}: {duration} ms");
            }
        });
    }
}
