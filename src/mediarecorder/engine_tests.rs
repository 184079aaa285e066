//! The engine with synthetic frames and exact times: no pipeline, no sleeps.

use super::*;

const MS: u64 = 1_000_000;
const SECOND: u64 = 1_000 * MS;
/// 30 fps video (rounded up, so that a second holds 30 frames).
const FRAME: u64 = 33_333_334;
/// 20 ms Opus packets at 48 kHz.
const PACKET: u64 = 20 * MS;
const PACKET_SAMPLES: u64 = 960;
const VIDEO: usize = 0;
const AUDIO: usize = 1;

fn track(id: usize, kind: Kind, live: bool, caps_known: bool) -> TrackSetup {
    TrackSetup {
        id,
        kind,
        live,
        caps_known,
        rate: 48_000,
        latency: 0,
    }
}

fn camera_and_microphone() -> Vec<TrackSetup> {
    vec![
        track(VIDEO, Kind::Video, true, true),
        track(AUDIO, Kind::Audio, true, true),
    ]
}

/// A live camera and microphone whose audio format is not known yet, after the
/// camera's first two frames.
fn two_frames_before_the_audio_format() -> Run {
    let tracks = vec![
        track(VIDEO, Kind::Video, true, true),
        track(AUDIO, Kind::Audio, true, false),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    run.next_video();
    run.next_video();
    run
}

/// A recording fed by hand; the payload of each frame is its running time.
struct Run {
    engine: Engine<u64>,
    actions: Vec<Action<u64>>,
    /// Wall-clock time the engine is told.
    now: Duration,
    /// Frames between video keyframes.
    gop: u64,
    video_index: u64,
    /// Where the next audio packet starts (running time).
    audio_rt: u64,
}

impl Run {
    fn new(limits: Limits, tracks: Vec<TrackSetup>) -> Self {
        Run {
            engine: Engine::new(limits, tracks),
            actions: Vec::new(),
            now: Duration::ZERO,
            gop: 30,
            video_index: 0,
            audio_rt: 0,
        }
    }

    fn unlimited() -> Self {
        Run::new(Limits::default(), camera_and_microphone())
    }

    fn feed(&mut self, frame: Frame<u64>) {
        let actions = self.engine.frame(frame, self.now);
        self.actions.extend(actions);
    }

    fn video_at(&mut self, rt: u64, keyframe: bool) {
        self.feed(Frame {
            track: VIDEO,
            rt,
            duration: Some(FRAME),
            keyframe,
            reordered: false,
            decode_lead: Some(0),
            trim: (0, 0),
            size: 1000,
            payload: rt,
        });
    }

    fn audio_at(&mut self, rt: u64) {
        self.feed(Frame {
            track: AUDIO,
            rt,
            duration: Some(PACKET),
            keyframe: true,
            reordered: false,
            decode_lead: None,
            trim: (0, 0),
            size: 100,
            payload: rt,
        });
    }

    /// The next video frame of a camera with a keyframe every `gop` frames.
    fn next_video(&mut self) {
        let rt = self.video_index * FRAME;
        let keyframe = self.video_index.is_multiple_of(self.gop);
        self.video_index += 1;
        self.video_at(rt, keyframe);
    }

    /// Video and audio up to running time `until`, interleaved as they are captured,
    /// audio `audio_lead` ahead.
    fn play(&mut self, until: u64, audio_lead: u64) {
        loop {
            let video_rt = self.video_index * FRAME;
            if video_rt >= until && self.audio_rt >= until {
                return;
            }
            if self.audio_rt < until && self.audio_rt <= video_rt + audio_lead {
                let rt = self.audio_rt;
                self.audio_rt += PACKET;
                self.audio_at(rt);
            } else if video_rt < until {
                self.next_video();
            } else {
                let rt = self.audio_rt;
                self.audio_rt += PACKET;
                self.audio_at(rt);
            }
        }
    }

    fn finish(&mut self) {
        let actions = self.engine.finish();
        self.actions.extend(actions);
    }

    fn writes(&self, file: FileId, track: usize) -> Vec<&Write<u64>> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Write(w) if w.file == file && w.track == track => Some(w),
                _ => None,
            })
            .collect()
    }

    fn opened(&self) -> Vec<(FileId, u64)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Open { file, start, .. } => Some((*file, *start)),
                _ => None,
            })
            .collect()
    }

    /// Each file opened: its start and the wall-clock time it is named by.
    fn opened_named(&self) -> Vec<(u64, Option<u64>)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Open {
                    start, wall_clock, ..
                } => Some((*start, *wall_clock)),
                _ => None,
            })
            .collect()
    }

    fn closed(&self) -> Vec<(FileId, FileSummary)> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::Close { file, summary } => Some((*file, summary.clone())),
                _ => None,
            })
            .collect()
    }

    fn keyframe_requests(&self) -> Vec<Option<u64>> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::RequestKeyframe(at) => Some(*at),
                _ => None,
            })
            .collect()
    }

    fn given_up(&self) -> Vec<usize> {
        self.actions
            .iter()
            .filter_map(|a| match a {
                Action::GiveUp(ids) => Some(ids.clone()),
                _ => None,
            })
            .flatten()
            .collect()
    }
}

/// A recording of `tracks` in 1 s files, with a keyframe every `gop` frames.
fn one_second_files(tracks: Vec<TrackSetup>, gop: u64) -> Run {
    let limits = Limits {
        file_duration: Some(SECOND),
        ..Limits::default()
    };
    let mut run = Run::new(limits, tracks);
    run.gop = gop;
    run
}

/// A non-live recording in 1 s files, with a keyframe every `gop` frames.
fn non_live_one_second_files(gop: u64) -> Run {
    let tracks = vec![
        track(VIDEO, Kind::Video, false, true),
        track(AUDIO, Kind::Audio, false, true),
    ];
    one_second_files(tracks, gop)
}

impl Run {
    /// The audio packets up to running time `until`, with no video between them.
    fn audio_until(&mut self, until: u64) {
        while self.audio_rt < until {
            let rt = self.audio_rt;
            self.audio_rt += PACKET;
            self.audio_at(rt);
        }
    }

    /// Checks that each file holds the audio of its own time, in order, and returns
    /// the packets written (by running time; one split at a boundary counts once).
    /// The last file ends at `end`.
    fn audio_in_its_files(&self, end: u64) -> HashSet<u64> {
        let opened = self.opened();
        let mut packets = HashSet::new();
        for (i, &(file, start)) in opened.iter().enumerate() {
            let until = opened.get(i + 1).map_or(end, |&(_, s)| s);
            let audio = self.writes(file, AUDIO);
            assert_in_order(&audio);
            for w in &audio {
                assert!(
                    w.payload + PACKET > start && w.payload < until,
                    "file {file} ({start}..{until}) holds the packet of {}",
                    w.payload
                );
                packets.insert(w.payload);
            }
        }
        packets
    }
}

/// Audio samples a write keeps (a trimmed packet's duration is the kept part).
fn samples(w: &Write<u64>) -> u64 {
    ns_to_samples(w.duration.unwrap_or(0), 48_000)
}

/// Every frame of a track in a file follows the previous one.
fn assert_in_order(writes: &[&Write<u64>]) {
    for pair in writes.windows(2) {
        assert!(
            pair[1].pts > pair[0].pts,
            "out of order: {} then {}",
            pair[0].pts,
            pair[1].pts
        );
    }
}

#[test]
fn a_recording_starts_at_the_first_video_keyframe_with_audio_cut_to_it() {
    let mut run = Run::unlimited();
    // The camera's first frames are delta frames: the recording starts at the first
    // keyframe, 100 ms in, with the audio that began before it cut at that time.
    run.video_at(0, false);
    run.video_at(FRAME, false);
    run.audio_at(0);
    run.audio_at(PACKET);
    run.audio_at(2 * PACKET);
    run.audio_at(3 * PACKET);
    run.audio_at(4 * PACKET);
    assert!(run.opened().is_empty(), "nothing opens before the keyframe");
    run.video_at(100 * MS, true);
    run.audio_at(5 * PACKET);
    run.audio_at(6 * PACKET);
    run.finish();
    assert_eq!(run.opened(), vec![(0, 0)]);
    let video = run.writes(0, VIDEO);
    assert_eq!(video.len(), 1);
    assert_eq!(video[0].pts, 0);
    assert_eq!(video[0].payload, 100 * MS);
    let audio = run.writes(0, AUDIO);
    // The packet 80-100 ms ends at the start: left out; 100-120 ms starts the file.
    assert_eq!(audio[0].payload, 5 * PACKET);
    assert_eq!(audio[0].pts, 0);
    assert_eq!(audio[0].pre_skip, Some(0));
    assert_eq!(audio[1].pts, PACKET);
    assert_eq!(audio[1].pre_skip, None);
    let closed = run.closed();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0].1.first, 0);
    assert_eq!(closed[0].1.frames, 1);
    assert_eq!(closed[0].1.running_time, Some(100 * MS));
}

#[test]
fn audio_straddling_the_start_is_cut_to_the_sample_when_the_cut_is_clean() {
    let mut run = Run::unlimited();
    // Audio packet from 95 ms: 5 ms lie before the keyframe at 100 ms.
    run.audio_at(95 * MS);
    run.video_at(100 * MS, true);
    run.finish();
    let audio = run.writes(0, AUDIO);
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].pts, 0);
    assert_eq!(audio[0].duration, Some(15 * MS));
    assert_eq!(audio[0].trim, Some((240, 0)), "5 ms at 48 kHz skipped");
    assert_eq!(audio[0].pre_skip, Some(240));
}

#[test]
fn a_packet_mostly_before_the_start_is_left_out_rather_than_cut() {
    let mut run = Run::unlimited();
    // 12 ms of 20 before the start: matroskamux would write two blocks at 0.
    run.audio_at(88 * MS);
    run.audio_at(108 * MS);
    run.video_at(100 * MS, true);
    run.finish();
    let audio = run.writes(0, AUDIO);
    assert_eq!(audio.len(), 1);
    assert_eq!(audio[0].payload, 108 * MS);
    assert_eq!(audio[0].pts, 8 * MS);
}

#[test]
fn a_packet_mostly_before_a_boundary_ends_the_file_before_it_whole() {
    // 2 s files; audio packets start 5 ms into each 20 ms, so the first boundary
    // (60 frames, 2,000.00004 ms) falls 15 ms into the packet from 1,985 ms.
    let limits = Limits {
        file_duration: Some(2 * SECOND),
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    run.audio_rt = 5 * MS;
    run.play(3 * SECOND, 30 * MS);
    run.finish();
    let boundary = 60 * FRAME;
    let last = run.writes(0, AUDIO).last().cloned().unwrap().clone();
    assert_eq!(last.payload, 1_985 * MS);
    assert_eq!(
        last.pts + last.duration.unwrap(),
        2_005 * MS,
        "past {boundary}"
    );
    assert_eq!(last.trim, None);
    let first = run.writes(1, AUDIO)[0].clone();
    assert_eq!(
        first.payload,
        2_005 * MS,
        "the next packet begins the next file"
    );
    assert_eq!(first.pts, 2_005 * MS - boundary);
}

#[test]
fn segments_by_time_split_audio_at_the_video_boundary_to_the_sample() {
    let limits = Limits {
        file_duration: Some(2 * SECOND),
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    // Keyframes every second; audio packets start 15 ms into each 20 ms, so the
    // boundary cuts one 5 ms in (the audio runs 30 ms ahead of video, as encoders
    // deliver it).
    run.audio_rt = 15 * MS;
    run.play(5 * SECOND + FRAME, 30 * MS);
    run.finish();
    let opened = run.opened();
    assert_eq!(opened.len(), 3, "{opened:?}");
    let starts: Vec<u64> = opened.iter().map(|(_, s)| *s).collect();
    assert_eq!(starts, vec![0, 60 * FRAME, 120 * FRAME]);
    let closed = run.closed();
    assert_eq!(closed.len(), 3);
    let mut frames = 0;
    let mut audio_samples = 0;
    for (file, summary) in &closed {
        let video = run.writes(*file, VIDEO);
        let audio = run.writes(*file, AUDIO);
        assert_in_order(&video);
        assert_in_order(&audio);
        assert_eq!(video[0].pts, 0, "file {file} starts with video at 0");
        assert_eq!(summary.frames, video.len() as u64);
        frames += video.len() as u64;
        audio_samples += audio.iter().map(|w| samples(w)).sum::<u64>();
    }
    assert_eq!(frames, 151, "every frame in exactly one file");
    // Every sample captured is in exactly one file.
    let captured = (5 * SECOND + FRAME - 15 * MS).div_ceil(PACKET) * PACKET_SAMPLES;
    assert!(
        audio_samples.abs_diff(captured) <= 2 * PACKET_SAMPLES,
        "{audio_samples} samples of {captured}"
    );
    // The straddling packet is split: its head ends file 0 with the tail trimmed,
    // its tail begins file 1 with the head skipped through the pre-skip.
    let boundary = 60 * FRAME;
    let head = run.writes(0, AUDIO).last().cloned().unwrap().clone();
    let tail = run.writes(1, AUDIO)[0].clone();
    assert_eq!(head.payload, tail.payload, "one packet, two files");
    assert_eq!(head.pts + head.duration.unwrap(), boundary);
    assert_eq!(tail.pts, 0);
    let (head_skip, head_cut) = head.trim.unwrap();
    let (tail_skip, tail_cut) = tail.trim.unwrap();
    assert_eq!(head_skip, 0);
    assert_eq!(tail_cut, 0);
    assert!((head_cut + tail_skip).abs_diff(PACKET_SAMPLES) <= 1);
    assert_eq!(tail.pre_skip, Some(tail_skip as u16));
    // The next boundary's keyframe is asked for at its running time.
    assert!(run.keyframe_requests().contains(&Some(2 * SECOND)));
}

#[test]
fn audio_past_the_boundary_waits_for_the_keyframe_that_cuts() {
    let mut run = one_second_files(camera_and_microphone(), 15);
    // Audio runs 300 ms ahead of video: packets past 1 s arrive while the video is
    // still at 0.7 s, and must not go to the first file.
    run.play(2 * SECOND, 300 * MS);
    run.finish();
    let first = run.writes(0, AUDIO);
    let end_of_first = run.writes(0, VIDEO).len() as u64 * FRAME;
    for w in &first {
        assert!(w.pts < end_of_first, "audio at {} in file 0", w.pts);
    }
    let second = run.writes(1, AUDIO);
    assert!(!second.is_empty());
    assert_in_order(&second);
}

#[test]
fn segments_by_size_cut_at_the_next_keyframe_once_the_size_is_reached() {
    let limits = Limits {
        file_size: Some(20_000),
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    run.gop = 10;
    run.play(3 * SECOND, 0);
    run.finish();
    let closed = run.closed();
    assert!(closed.len() >= 2, "{closed:?}");
    let mut frames = 0;
    for (i, (file, summary)) in closed.iter().enumerate() {
        let video = run.writes(*file, VIDEO);
        assert_eq!(video[0].pts, 0);
        frames += summary.frames;
        if i + 1 < closed.len() {
            // 1000-byte frames and 100-byte packets: 20 000 bytes are reached within
            // 20 frames, then the file ends at the next keyframe.
            assert!(summary.frames >= 16 && summary.frames <= 30, "{summary:?}");
        }
    }
    assert_eq!(frames, 90);
}

#[test]
fn a_paused_recording_resumes_where_it_paused_without_a_gap() {
    let mut run = Run::unlimited();
    run.gop = 10;
    run.play(SECOND, 0);
    run.engine.pause();
    run.play(3 * SECOND, 0);
    run.engine.resume();
    run.play(4 * SECOND, 0);
    run.finish();
    let video = run.writes(0, VIDEO);
    assert_in_order(&video);
    // 30 frames before the pause; after it, from the first keyframe at or after 3 s.
    let before: Vec<_> = video.iter().filter(|w| w.payload < SECOND).collect();
    let after: Vec<_> = video.iter().filter(|w| w.payload >= 3 * SECOND).collect();
    assert_eq!(before.len(), 30);
    assert_eq!(after.len(), 30);
    assert_eq!(after[0].pts, 30 * FRAME, "resumes where it paused");
    assert_eq!(video.len(), 60);
    let audio = run.writes(0, AUDIO);
    assert_in_order(&audio);
    let gap = audio
        .windows(2)
        .map(|p| p[1].pts - (p[0].pts + p[0].duration.unwrap()))
        .max()
        .unwrap();
    assert!(gap <= FRAME, "audio gap of {gap} ns across the pause");
    let recorded = run.engine.recorded();
    assert!(recorded.abs_diff(2 * SECOND) <= PACKET, "{recorded}");
}

#[test]
fn duration_ends_exactly_with_audio_cut_to_the_sample() {
    let limits = Limits {
        duration: Some(2 * SECOND + 5 * MS),
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    run.play(3 * SECOND, 0);
    assert!(run.engine.is_complete());
    assert!(run.engine.reached_duration());
    run.finish();
    let video = run.writes(0, VIDEO);
    // 2.005 s holds frames 0..=59 (frame 60 starts at 2.000 s and lies mostly after).
    assert_eq!(video.len(), 60);
    let audio = run.writes(0, AUDIO);
    let last = audio.last().unwrap();
    assert_eq!(last.pts + last.duration.unwrap(), 2 * SECOND + 5 * MS);
    assert_eq!(last.trim, Some((0, 720)), "15 ms cut off the last packet");
    assert_eq!(run.closed()[0].1.last, 2 * SECOND + 5 * MS);
}

#[test]
fn pre_recorded_frames_hand_over_to_live_ones_without_duplicate_or_gap() {
    let mut run = Run::unlimited();
    // The ring holds 2 s captured before the start, handed over in capture order;
    // live frames follow.
    run.play(2 * SECOND, 0);
    run.play(4 * SECOND, 0);
    run.finish();
    let video = run.writes(0, VIDEO);
    assert_eq!(video.len(), 120);
    let payloads: HashSet<u64> = video.iter().map(|w| w.payload).collect();
    assert_eq!(payloads.len(), 120, "no frame twice");
    for (i, w) in video.iter().enumerate() {
        assert_eq!(w.pts, i as u64 * FRAME);
    }
}

#[test]
fn a_live_recording_goes_on_without_a_camera_that_never_delivers() {
    let tracks = vec![
        track(VIDEO, Kind::Video, true, false),
        track(AUDIO, Kind::Audio, true, true),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    for i in 0..100 {
        run.now = Duration::from_millis(i * 20);
        run.audio_at(i * PACKET);
    }
    assert!(run.opened().is_empty(), "waits up to 3 s");
    for i in 100..200 {
        run.now = Duration::from_millis(i * 20);
        run.audio_at(i * PACKET);
    }
    assert_eq!(run.given_up(), vec![VIDEO]);
    run.finish();
    let audio = run.writes(0, AUDIO);
    assert_eq!(audio.len(), 200, "the audio from its first packet");
    assert_eq!(audio[0].pts, 0);
    assert_eq!(run.closed()[0].1.frames, 200);
}

#[test]
fn a_non_live_recording_waits_for_a_slow_stream_however_long() {
    let tracks = vec![
        track(VIDEO, Kind::Video, false, false),
        track(AUDIO, Kind::Audio, false, true),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    // A file's audio decodes 60 s ahead of its video (wall clock too).
    for i in 0..3000 {
        run.now = Duration::from_millis(i * 20);
        run.audio_at(i * PACKET);
    }
    run.audio_rt = 3000 * PACKET;
    assert!(run.given_up().is_empty());
    assert!(run.opened().is_empty());
    run.engine.caps_known(VIDEO, Kind::Video, 0);
    run.play(60 * SECOND, 0);
    run.finish();
    assert!(run.given_up().is_empty());
    assert_eq!(run.writes(0, VIDEO).len(), 1800);
    assert_eq!(
        run.writes(0, AUDIO).len(),
        3000,
        "no audio lost while waiting"
    );
}

fn left_out(run: &Run) -> Vec<u64> {
    run.actions
        .iter()
        .filter_map(|a| match a {
            Action::AudioLeftOut(ns) => Some(*ns),
            _ => None,
        })
        .collect()
}

/// A file whose audio starts `lead` before its video, played (non-live) or captured
/// (live) for 6 s: audio from 0, video from `lead`.
fn audio_first(live: bool, lead: u64) -> Run {
    let tracks = vec![
        track(VIDEO, Kind::Video, live, true),
        track(AUDIO, Kind::Audio, live, true),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    let mut audio_rt = 0;
    let mut video_rt = lead;
    while audio_rt < 6 * SECOND || video_rt < 6 * SECOND {
        if audio_rt <= video_rt && audio_rt < 6 * SECOND {
            run.audio_at(audio_rt);
            audio_rt += PACKET;
        } else {
            run.video_at(video_rt, video_rt == lead);
            video_rt += FRAME;
        }
    }
    run.finish();
    run
}

#[test]
fn a_file_whose_video_starts_late_keeps_the_audio_before_it() {
    let run = audio_first(false, 2 * SECOND);
    let audio = run.writes(0, AUDIO);
    assert_eq!(audio.len(), 300, "all 6 s of audio");
    assert_eq!(audio[0].pts, 0);
    let video = run.writes(0, VIDEO);
    assert_eq!(video[0].pts, 2 * SECOND, "the video track starts at 2 s");
    assert_eq!(video.len(), 120);
    assert!(left_out(&run).is_empty());
    // The audio's encoder delivers after the first pictures arrived (the file is not
    // open yet): the start moves back to the audio.
    let tracks = vec![
        track(VIDEO, Kind::Video, false, true),
        track(AUDIO, Kind::Audio, false, false),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    for i in 0..30 {
        run.video_at(2 * SECOND + i * FRAME, i == 0);
    }
    run.engine.caps_known(AUDIO, Kind::Audio, 48_000);
    for i in 0..150 {
        run.audio_at(i * PACKET);
    }
    run.finish();
    assert_eq!(run.writes(0, AUDIO).len(), 150);
    assert_eq!(run.writes(0, AUDIO)[0].pts, 0);
    assert_eq!(run.writes(0, VIDEO)[0].pts, 2 * SECOND);
    assert_eq!(run.writes(0, VIDEO)[29].pts, 2 * SECOND + 29 * FRAME);
    // A lead shorter than AUDIO_LEAD_KEPT: the file starts with its picture.
    let run = audio_first(false, 60 * MS);
    assert_eq!(run.writes(0, VIDEO)[0].pts, 0);
    assert_eq!(run.writes(0, AUDIO)[0].pts, 0);
    assert!(left_out(&run).is_empty(), "shorter than an encoder's wait");
}

#[test]
fn a_container_whose_tracks_start_together_reports_the_audio_it_leaves_out() {
    let tracks = vec![
        track(VIDEO, Kind::Video, false, true),
        track(AUDIO, Kind::Audio, false, true),
    ];
    let limits = Limits {
        tracks_start_together: true,
        ..Limits::default()
    };
    let mut run = Run::new(limits, tracks);
    for i in 0..100 {
        run.audio_at(i * PACKET);
    }
    run.video_at(2 * SECOND, true);
    run.audio_at(2 * SECOND);
    run.finish();
    assert_eq!(run.writes(0, VIDEO)[0].pts, 0);
    assert_eq!(left_out(&run), [2 * SECOND]);
}

#[test]
fn audio_a_live_recording_leaves_out_before_its_first_picture_is_reported() {
    let run = audio_first(true, 2 * SECOND);
    assert_eq!(
        run.writes(0, VIDEO)[0].pts,
        0,
        "a live recording starts with video"
    );
    assert_eq!(run.writes(0, AUDIO).len(), 200);
    assert_eq!(left_out(&run), [2 * SECOND], "said once, with how much");
    let run = audio_first(true, 300 * MS);
    assert!(
        left_out(&run).is_empty(),
        "an encoder's usual wait is not reported"
    );
}

#[test]
fn the_first_file_opens_once_every_stream_told_its_format() {
    let mut run = two_frames_before_the_audio_format();
    assert!(run.opened().is_empty(), "audio's format is not known yet");
    run.engine.caps_known(AUDIO, Kind::Audio, 48_000);
    run.audio_at(0);
    assert_eq!(run.opened(), vec![(0, 0)]);
    let Action::Open { tracks, .. } = &run.actions[0] else {
        panic!("{:?}", run.actions[0]);
    };
    assert_eq!(tracks, &vec![(VIDEO, Kind::Video), (AUDIO, Kind::Audio)]);
    run.finish();
    assert_eq!(run.writes(0, VIDEO).len(), 2);
    assert_eq!(run.writes(0, AUDIO).len(), 1);
}

#[test]
fn a_stream_that_ended_before_telling_its_format_is_not_waited_for() {
    let tracks = vec![
        track(VIDEO, Kind::Video, false, true),
        track(AUDIO, Kind::Audio, false, false),
    ];
    let mut run = Run::new(Limits::default(), tracks);
    run.next_video();
    run.engine.end_of_stream(AUDIO);
    run.next_video();
    assert_eq!(run.opened(), vec![(0, 0)]);
    let Action::Open { tracks, .. } = &run.actions[0] else {
        panic!();
    };
    assert_eq!(tracks, &vec![(VIDEO, Kind::Video)]);
    assert!(!run.engine.is_complete());
    run.engine.end_of_stream(VIDEO);
    assert!(
        run.engine.is_complete(),
        "the audio track no longer takes part"
    );
}

#[test]
fn the_recording_completes_when_the_last_track_ends() {
    let mut run = Run::unlimited();
    run.play(SECOND, 0);
    run.engine.end_of_stream(AUDIO);
    assert!(!run.engine.is_complete());
    run.play(2 * SECOND, 0);
    run.engine.end_of_stream(VIDEO);
    assert!(run.engine.is_complete());
    assert!(!run.engine.reached_duration());
}

#[test]
fn a_flushing_seek_continues_the_file_from_the_next_keyframe() {
    let mut run = Run::unlimited();
    run.gop = 10;
    run.play(3 * SECOND, 0);
    // Running time restarts at 0 (a seek in the source), mid-GOP.
    run.video_index = 0;
    run.audio_rt = 0;
    run.gop = 10;
    run.video_at(0, false);
    run.play(2 * SECOND, 0);
    run.finish();
    assert_eq!(run.keyframe_requests(), vec![None]);
    let video = run.writes(0, VIDEO);
    assert_in_order(&video);
    assert_eq!(video.len(), 90 + 60);
    assert_eq!(video[90].pts, 90 * FRAME, "continues where it was");
    let audio = run.writes(0, AUDIO);
    assert_in_order(&audio);
    assert_eq!(run.opened().len(), 1);
}

#[test]
fn progress_is_reported_each_second_of_media() {
    let mut run = Run::unlimited();
    run.play(3 * SECOND + FRAME, 0);
    let progress: Vec<u64> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Progress { recorded } => Some(*recorded),
            _ => None,
        })
        .collect();
    assert_eq!(progress.len(), 3);
    for (i, recorded) in progress.iter().enumerate() {
        let second = (i as u64 + 1) * SECOND;
        assert!(*recorded >= second && *recorded < second + FRAME + PACKET);
    }
}

#[test]
fn an_audio_only_recording_starts_at_its_first_packet_and_cuts_on_audio() {
    let limits = Limits {
        file_duration: Some(SECOND),
        ..Limits::default()
    };
    let mut run = Run::new(limits, vec![track(AUDIO, Kind::Audio, true, true)]);
    for i in 0..150 {
        run.audio_at(5 * SECOND + i * PACKET);
    }
    run.finish();
    let closed = run.closed();
    assert_eq!(closed.len(), 3);
    let total: u64 = closed.iter().map(|(_, s)| s.frames).sum();
    assert_eq!(total, 150);
    for (file, _) in &closed {
        assert_eq!(run.writes(*file, AUDIO)[0].pts, 0);
    }
}

#[test]
fn encoder_priming_and_decoding_order_carry_into_the_file() {
    let mut run = Run::unlimited();
    run.feed(Frame {
        track: VIDEO,
        rt: 0,
        duration: Some(FRAME),
        keyframe: true,
        reordered: true,
        decode_lead: Some(FRAME),
        trim: (0, 0),
        size: 1,
        payload: 0,
    });
    run.feed(Frame {
        track: AUDIO,
        rt: 0,
        duration: Some(PACKET),
        keyframe: true,
        reordered: false,
        decode_lead: None,
        trim: (312, 0),
        size: 1,
        payload: 0,
    });
    run.finish();
    let video = run.writes(0, VIDEO);
    assert_eq!(video[0].dts, Some(0), "a DTS before 0 is held at 0");
    let audio = run.writes(0, AUDIO);
    assert_eq!(
        audio[0].trim, None,
        "the encoder's marks are kept as they are"
    );
    assert_eq!(
        audio[0].pre_skip,
        Some(312),
        "the priming is the file's pre-skip"
    );
}

#[test]
fn finishing_before_the_first_file_opened_writes_what_waited() {
    let mut run = two_frames_before_the_audio_format();
    run.finish();
    assert_eq!(run.opened(), vec![(0, 0)]);
    assert_eq!(run.writes(0, VIDEO).len(), 2);
    assert_eq!(run.closed().len(), 1);
}

#[test]
fn finishing_between_segments_ends_the_last_file_with_the_audio_that_waited() {
    let mut run = one_second_files(camera_and_microphone(), 15);
    run.play(900 * MS, 0);
    // The audio encoder is 300 ms ahead: past the boundary at 1 s.
    while run.audio_rt < 1200 * MS {
        let rt = run.audio_rt;
        run.audio_rt += PACKET;
        run.audio_at(rt);
    }
    run.finish();
    let closed = run.closed();
    assert_eq!(closed.len(), 1);
    let audio = run.writes(0, AUDIO);
    assert!(
        audio.last().unwrap().pts >= SECOND,
        "the early audio is kept"
    );
    assert_eq!(
        closed[0].1.frames, 27,
        "early audio does not count as frames"
    );
}

#[test]
fn frames_of_a_stream_not_taking_part_are_ignored() {
    let mut run = Run::new(
        Limits::default(),
        vec![track(VIDEO, Kind::Video, true, true)],
    );
    run.audio_at(0);
    run.next_video();
    run.finish();
    assert!(run.writes(0, AUDIO).is_empty());
    assert_eq!(run.writes(0, VIDEO).len(), 1);
}

#[test]
fn a_cut_must_leave_the_next_packet_past_the_pre_skip() {
    // 20 ms Opus packets: the next one starts at 20 ms - cut, which must exceed the
    // cut (matroskamux writes anything within the pre-skip at 0) by rounding room.
    assert!(clean_cut(0, 20 * MS));
    assert!(clean_cut(9 * MS, 20 * MS));
    assert!(!clean_cut(9 * MS + 1, 20 * MS));
    assert!(!clean_cut(12 * MS, 20 * MS));
    // The encoder's first packet, 13.5 ms after its 6.5 ms priming: a 2 ms cut is
    // clean, a 3 ms cut is not.
    assert!(cut_is_clean(13_500_000, 312, 2 * MS, 48_000));
    assert!(!cut_is_clean(13_500_000, 312, 3 * MS, 48_000));
}

/// 7 s of keyframes in 2 s files aligned to the wall clock, which reads `wall_at_zero`
/// at running time 0.
fn aligned_run(wall_at_zero: u64) -> Run {
    let limits = Limits {
        file_duration: Some(2 * SECOND),
        align_to_clock: true,
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    run.engine.wall_clock(wall_at_zero as i64);
    run.gop = 1;
    run.play(7 * SECOND, 0);
    run.finish();
    run
}

#[test]
fn clock_aligned_files_start_within_a_frame_of_each_multiple() {
    // Running time 0 is 0.4 s past an even second of the wall clock.
    let even = 1_700_000_000 * SECOND;
    let run = aligned_run(even + 400 * MS);
    let opens = run.opened_named();
    assert_eq!(opens.len(), 4, "{opens:?}");
    // The first file is shorter: it ends where the wall clock reaches the next even
    // second; every later file starts within a frame of one, and is named by it.
    assert_eq!(opens[0], (0, Some(even + 400 * MS)));
    for (i, (start, wall)) in opens.iter().enumerate().skip(1) {
        let aligned = 1_600 * MS + (i as u64 - 1) * 2 * SECOND;
        assert!(
            start.abs_diff(aligned) < FRAME,
            "file {i} starts at {start}"
        );
        assert_eq!(*wall, Some(even + i as u64 * 2 * SECOND));
    }
    // The boundary keyframes are asked for at those moments.
    let requests = run.keyframe_requests();
    assert!(requests.contains(&Some(1_600 * MS)), "{requests:?}");
    assert!(requests.contains(&Some(3_600 * MS)), "{requests:?}");
    let frames: u64 = run.closed().iter().map(|(_, s)| s.frames).sum();
    assert_eq!(frames, 210);
}

#[test]
fn without_the_wall_clock_aligned_files_are_as_long_as_asked() {
    let limits = Limits {
        file_duration: Some(2 * SECOND),
        align_to_clock: true,
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    assert!(run.engine.needs_wall_clock());
    run.play(5 * SECOND, 0);
    run.finish();
    let starts: Vec<u64> = run.opened().iter().map(|(_, s)| *s).collect();
    assert_eq!(starts, vec![0, 60 * FRAME, 120 * FRAME]);
}

#[test]
fn a_recording_starting_just_before_a_multiple_keeps_its_first_file_whole() {
    // Running time 0 is 50 ms before an even second: the first file is named by that
    // second, so it must also run to the next one, not end 50 ms later under the
    // same name as the file after it.
    let even = 1_700_000_000 * SECOND;
    let opens = aligned_run(even - 50 * MS).opened_named();
    assert_eq!(opens[0], (0, Some(even)), "{opens:?}");
    assert!(opens[1].0.abs_diff(2_050 * MS) < FRAME, "{opens:?}");
    let names: Vec<u64> = opens.iter().filter_map(|(_, w)| *w).collect();
    assert!(
        names.windows(2).all(|w| w[1] == w[0] + 2 * SECOND),
        "{names:?}"
    );
}

/// A camera whose encoder falls behind: from frame 20 on only every third frame reaches
/// the recording (the others are dropped before the encoder), and after 1.5 s none
/// does. The recording still ends at its duration, on the running-time clock, and
/// counts exactly the frames it lacks.
#[test]
fn a_live_timed_recording_ends_on_time_however_far_behind_its_encoder() {
    let limits = Limits {
        duration: Some(2 * SECOND),
        ..Limits::default()
    };
    let start = 10 * SECOND;
    let mut run = Run::new(limits, vec![track(VIDEO, Kind::Video, true, true)]);
    let mut fed_within = 0;
    let mut captured = 0;
    // Captured from before the start (not counted) to 4 s, long past the end.
    for i in 0..120u64 {
        let rt = start - 5 * FRAME + i * FRAME;
        let reaches = rt < start + 1_500 * MS && (rt < start + 20 * FRAME || i % 3 == 0);
        run.engine.captured(
            VIDEO,
            &[Capture {
                rt,
                duration: Some(FRAME),
                lost: !reaches && rt < start + 1_500 * MS,
            }],
        );
        if rt >= start && rt < start + 2 * SECOND && rt < start + 1_800 * MS {
            captured += 1;
        }
        if rt >= start + 1_800 * MS {
            // From 1.8 s on, the source itself delivers nothing more.
            break;
        }
        if reaches {
            run.video_at(rt, rt == start);
            if rt >= start {
                fed_within += 1;
            }
        }
    }
    let end_by: Vec<u64> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::EndBy(at) => Some(*at),
            _ => None,
        })
        .collect();
    assert_eq!(end_by, [start + 2 * SECOND + END_GRACE], "announced once");
    assert!(!run.engine.is_complete(), "no frame past the end arrived");
    assert!(!run.engine.time_is_up(start + 2 * SECOND + END_GRACE - 1));
    assert!(run.engine.time_is_up(start + 2 * SECOND + END_GRACE));
    assert!(run.engine.is_complete() && run.engine.reached_duration());
    assert!(!run.engine.time_is_up(start + 5 * SECOND), "once");
    run.finish();
    let written = run.writes(0, VIDEO).len() as u64;
    assert_eq!(captured, 54, "1.8 s at 30 fps captured");
    assert_eq!(
        written, fed_within,
        "the frames before the start are left out"
    );
    assert!(written < 40, "{written}");
    // 2 s at 30 fps, less what is in the file: the 6 frames after 1.8 s never came.
    assert_eq!(run.engine.lost(), 60 - written);
}

/// A network camera's frames reach the recorder up to its jitter buffer's latency
/// (2 s for rtspsrc) after their running time while it waits for lost packets: a live
/// timed recording waits that much longer before giving up on them, else a lossy
/// camera's last second of video is cut.
#[test]
fn a_live_timed_recording_waits_its_sources_latency_before_ending() {
    let limits = Limits {
        duration: Some(2 * SECOND),
        ..Limits::default()
    };
    let latency = 2 * SECOND;
    let mut tracks = camera_and_microphone();
    tracks[VIDEO].latency = latency;
    tracks[AUDIO].latency = 200 * MS;
    let mut run = Run::new(limits, tracks);
    let start = 10 * SECOND;
    for i in 0..30u64 {
        run.video_at(start + i * FRAME, i == 0);
    }
    let end_by: Vec<u64> = run
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::EndBy(at) => Some(*at),
            _ => None,
        })
        .collect();
    let end = start + 2 * SECOND;
    assert_eq!(end_by, [end + latency + END_GRACE], "the largest latency");
    assert!(
        !run.engine.time_is_up(end + END_GRACE),
        "frames still to come"
    );
    assert!(!run.engine.time_is_up(end + latency + END_GRACE - 1));
    assert!(run.engine.time_is_up(end + latency + END_GRACE));
}

#[test]
fn frames_lost_after_the_end_or_while_paused_do_not_count() {
    let limits = Limits {
        duration: Some(SECOND),
        ..Limits::default()
    };
    let mut run = Run::new(limits, camera_and_microphone());
    let lost = |rt| Capture {
        rt,
        duration: Some(PACKET),
        lost: true,
    };
    run.play(500 * MS, 0);
    run.engine.captured(AUDIO, &[lost(400 * MS)]);
    assert_eq!(run.engine.lost(), 1, "within the recording");
    run.engine.pause();
    run.engine.captured(AUDIO, &[lost(520 * MS)]);
    run.engine.resume();
    assert_eq!(
        run.engine.end_by(),
        None,
        "no end while waiting for the keyframe that resumes"
    );
    run.play(2 * SECOND, 0);
    run.engine.captured(AUDIO, &[lost(1_900 * MS)]);
    assert_eq!(run.engine.lost(), 1);
}

#[test]
fn audio_that_came_before_the_video_keeps_its_place_past_a_boundary() {
    // A non-live file: its audio is encoded far ahead, 1.9 s of it before the first
    // video frame. The packets past the first boundary wait in the queue; a packet
    // that arrives meanwhile must queue behind them, not be placed before them
    // (which laid the waiting packets end to end after it: a second of audio moved
    // into the next file, 1 s late).
    let mut run = one_second_files(camera_and_microphone(), 15);
    let next_audio = |run: &mut Run| {
        let rt = run.audio_rt;
        run.audio_rt += PACKET;
        run.audio_at(rt);
    };
    for _ in 0..95 {
        next_audio(&mut run);
    }
    // The first video frame; then audio and video take turns.
    run.next_video();
    while run.video_index < 90 {
        if run.audio_rt < 3 * SECOND {
            next_audio(&mut run);
        }
        run.next_video();
    }
    while run.audio_rt < 3 * SECOND {
        next_audio(&mut run);
    }
    run.finish();
    let closed = run.closed();
    assert_eq!(closed.len(), 3, "{closed:?}");
    let mut total = 0;
    for (file, _) in &closed {
        let video = run.writes(*file, VIDEO);
        let audio = run.writes(*file, AUDIO);
        assert_in_order(&audio);
        let video_end = video.len() as u64 * FRAME;
        // Each file's audio spans its video, end to end from its start.
        assert!(
            audio[0].pts <= PACKET,
            "file {file}: audio from {}",
            audio[0].pts
        );
        for w in &audio {
            assert!(
                w.pts < video_end,
                "file {file}: audio at {} past its video's end {video_end}",
                w.pts
            );
        }
        let audio_ns: u64 = audio.iter().map(|w| w.duration.unwrap_or(0)).sum();
        assert!(
            audio_ns.abs_diff(video_end) <= PACKET,
            "file {file}: {audio_ns} ns of audio for {video_end} ns of video"
        );
        total += audio.len();
    }
    assert!(total >= 150, "{total} audio writes");
}

/// Non-live video that ends before its audio, with short segments: the audio past
/// the last boundary (no keyframe will cut there) ends the last file, every packet of
/// it, and not only the first that waited.
#[test]
fn audio_outlasting_the_video_ends_the_last_file_whole() {
    let mut run = non_live_one_second_files(30);
    run.play(1500 * MS, 0);
    run.engine.end_of_stream(VIDEO);
    // 400 ms more audio than video, past the boundary at 2 s.
    run.audio_until(2400 * MS);
    // Audio that comes after the video ended is written as it comes.
    let before_finish = run.writes(1, AUDIO).len();
    run.engine.end_of_stream(AUDIO);
    run.finish();
    let boundary = 30 * FRAME;
    assert_eq!(run.opened(), vec![(0, 0), (1, boundary)]);
    let last = run.writes(1, AUDIO);
    assert_eq!(run.audio_in_its_files(2400 * MS).len(), 120);
    assert_eq!(last.first().unwrap().pts, 0);
    assert_eq!(last.last().unwrap().pts, 2380 * MS - boundary);
    assert_eq!(before_finish, last.len());
}

/// Audio that starts after the video (a file whose sound begins late) keeps its time
/// in the file, whether or not the container starts its tracks together.
#[test]
fn audio_that_starts_after_the_video_keeps_its_time() {
    for tracks_start_together in [false, true] {
        let limits = Limits {
            tracks_start_together,
            ..Limits::default()
        };
        let tracks = vec![
            track(VIDEO, Kind::Video, false, true),
            track(AUDIO, Kind::Audio, false, true),
        ];
        let mut run = Run::new(limits, tracks);
        run.audio_rt = 500 * MS;
        run.play(SECOND, 0);
        run.finish();
        let audio = run.writes(0, AUDIO);
        assert_eq!(audio.first().unwrap().pts, 500 * MS);
        assert_eq!(audio.len(), 25);
    }
}

/// Audio that lags the video by more than a file (a slow audio encoder, short
/// segments): each packet still goes to the file whose time it belongs to, at its
/// time there, however many files the video opened before it came.
#[test]
fn audio_lagging_by_more_than_a_file_goes_to_the_files_it_belongs_to() {
    let mut run = non_live_one_second_files(15);
    // The first audio packet comes with the first frame; then the video runs 2.5 s
    // ahead.
    run.audio_at(0);
    run.audio_rt = PACKET;
    while run.video_index < 90 {
        run.next_video();
    }
    run.audio_until(3 * SECOND);
    run.finish();
    let opened = run.opened();
    assert_eq!(opened.len(), 3, "{opened:?}");
    for (file, _) in opened {
        let audio = run.writes(file, AUDIO);
        let at_zero = audio.iter().filter(|w| w.pts == 0).count();
        assert_eq!(at_zero, 1, "file {file}: {at_zero} packets at 0");
    }
    assert_eq!(run.audio_in_its_files(3 * SECOND).len(), 150);
}

/// Audio far ahead of the video (an encoder with a long lookahead, non-live), with
/// short files: it waits past each boundary for the keyframe that cuts there, and
/// goes to its own file, also when its stream ended before the video's.
#[test]
fn audio_ahead_of_the_video_goes_to_its_files_when_it_ends_first() {
    for lead in [100 * MS, 1500 * MS, 2500 * MS] {
        for gop in [15, 37] {
            let mut run = non_live_one_second_files(gop);
            run.play(4 * SECOND - lead, lead);
            run.audio_until(4 * SECOND);
            run.engine.end_of_stream(AUDIO);
            while run.video_index < 120 {
                run.next_video();
            }
            run.engine.end_of_stream(VIDEO);
            run.finish();
            let packets = run.audio_in_its_files(4 * SECOND);
            assert_eq!(packets.len(), 200, "lead {lead} gop {gop}");
        }
    }
}
