//! Finalizing a WebM, Matroska or fragmented MP4 file that was cut short (a killed
//! recorder, a power cut, a copy that stopped): such a file plays up to its last
//! complete block but has no Duration and no Cues (an MP4: no total duration and no
//! `mfra` index), so players cannot seek in it. Its audio and video are remuxed, as
//! they are, through `matroskademux ! webmmux` (`matroskamux` for a Matroska file;
//! `qtdemux ! <parser> ! mp4mux` for an MP4, giving a plain MP4 with its index) into a
//! new file that has both. Nothing is decoded or re-encoded; a block cut off at the end
//! is left out. Tracks other than audio and video (subtitles) are left out.
//!
//! The `mediarecorder` element runs this on the files its journal says a crash left
//! unfinished; `examples/repair.rs` runs it on any file. Call `gst::init()` first.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;

use crate::mediarecorder::codecs::make;
use crate::mediarecorder::containers::{Container, Recovery};

/// What a repaired file holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepairReport {
    /// The media time the repaired file spans (its Duration).
    pub duration: gst::ClockTime,
    /// The repaired file's size.
    pub bytes: u64,
    /// Frames copied, counted as the recorder's `file-closed` counts them: video
    /// frames, or audio packets in a file without video.
    pub frames: u64,
    /// Audio packets copied, all audio tracks together.
    pub audio_packets: u64,
}

/// Suffix of the temporary file a repair in place writes beside the original; hidden
/// (a leading dot), so no recorder's name pattern takes it for a recording.
const TEMP_SUFFIX: &str = ".mediarecorder-repair";

/// A track may be this far ahead of another in the file before the copy waits for the
/// other (files interleave their tracks within a cluster, a second or two).
const MAX_TRACK_LEAD_BYTES: u32 = 64 * 1024 * 1024;

/// Finalizes `path` in place: remuxes it into a hidden file beside it, then renames
/// that over the original. The original is left as it was when anything fails.
///
/// Errors: `gst::StreamError` when the file holds no media that can be recovered (not
/// WebM or Matroska, or not one complete frame); `gst::ResourceError` when reading or
/// writing failed (worth trying again); `gst::CoreError::MissingPlugin` when a
/// GStreamer element is missing.
pub fn repair_file(path: &Path) -> Result<RepairReport, glib::Error> {
    let temp = temp_path(path);
    // Made here, new and not through a symlink (a link planted at the hidden name must
    // not lead the copy into another file); the copy writes this very file.
    let made = create_temp(&temp).map_err(|e| {
        glib::Error::new(
            gst::ResourceError::OpenWrite,
            &format!("Cannot make '{}' to repair into: {e}", temp.display()),
        )
    })?;
    let output = by_descriptor(&made).unwrap_or_else(|| temp.clone());
    let result = repair_to(path, &output).and_then(|mut report| {
        replace(&temp, path).map_err(|e| {
            glib::Error::new(
                gst::ResourceError::Write,
                &format!(
                    "Cannot replace '{}' with its repaired copy: {e}",
                    path.display()
                ),
            )
        })?;
        report.bytes = std::fs::metadata(path).map_or(report.bytes, |m| m.len());
        Ok(report)
    });
    drop(made);
    if result.is_err() {
        let _ = std::fs::remove_file(&temp);
    }
    result
}

/// A new, empty file at `temp`, whatever was there (a leftover, or a symlink) removed.
fn create_temp(temp: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    match std::fs::remove_file(temp) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(temp)
}

/// The name that opens `file` itself, whatever happens to its own name (Linux).
fn by_descriptor(file: &std::fs::File) -> Option<PathBuf> {
    use std::os::fd::AsRawFd;
    let path = PathBuf::from(format!("/proc/self/fd/{}", file.as_raw_fd()));
    path.exists().then_some(path)
}

/// Writes a finalized copy of `input` to `output` (which is replaced if it exists);
/// `input` is only read. Errors as `repair_file`.
pub fn repair_to(input: &Path, output: &Path) -> Result<RepairReport, glib::Error> {
    let size = check_input(input)?;
    if is_same_file(input, output) {
        return Err(glib::Error::new(
            gst::ResourceError::Settings,
            &format!(
                "Cannot repair '{}' into itself: give another output, or repair it in place",
                input.display()
            ),
        ));
    }
    let Recovery {
        demuxer,
        muxer,
        parse,
    } = container_of(input)?.recovery();
    let pipeline = gst::Pipeline::with_name("mediarecorder-repair");
    let src = make("filesrc")?;
    src.set_property("location", input.to_string_lossy().as_ref());
    let demux = make(demuxer)?;
    let mux = make(muxer)?;
    let sink = make("filesink")?;
    sink.set_property("location", output.to_string_lossy().as_ref());
    pipeline
        .add_many([&src, &demux, &mux, &sink])
        .and_then(|_| src.link(&demux))
        .and_then(|_| mux.link(&sink))
        .map_err(|e| glib::Error::new(gst::CoreError::Negotiation, &e.to_string()))?;

    let stats = Arc::new(Mutex::new(Stats::default()));
    let pipeline_weak = pipeline.downgrade();
    let mux_weak = mux.downgrade();
    let track_stats = stats.clone();
    let input_name = input.display().to_string();
    demux.connect_pad_added(move |_, pad| {
        let (Some(pipeline), Some(mux)) = (pipeline_weak.upgrade(), mux_weak.upgrade()) else {
            return;
        };
        if let Err(why) = add_track(&pipeline, &mux, pad, &track_stats, parse) {
            let msg = format!("Cannot copy a track of '{input_name}': {why}");
            let _ = pipeline.post_message(
                gst::message::Error::builder(gst::StreamError::Format, &msg)
                    .src(&mux)
                    .build(),
            );
        }
    });

    let result = run(&pipeline, deadline_for(size));
    let _ = pipeline.set_state(gst::State::Null);
    let stats = stats.lock().unwrap().clone();
    let no_frame = || {
        glib::Error::new(
            gst::StreamError::Demux,
            &format!(
                "Cannot repair '{}': it holds no complete frame",
                input.display()
            ),
        )
    };
    result.map_err(|err| {
        let message = format!("Cannot repair '{}': {}", input.display(), err.message());
        if let Some(kind) = err.kind::<gst::ResourceError>() {
            glib::Error::new(kind, &message)
        } else if err.kind::<gst::CoreError>().is_some() {
            err
        } else if stats.blocks() == 0 {
            // The demuxer's own words ("general stream error") say less.
            no_frame()
        } else {
            glib::Error::new(gst::StreamError::Demux, &message)
        }
    })?;
    if stats.blocks() == 0 {
        return Err(no_frame());
    }
    Ok(RepairReport {
        duration: gst::ClockTime::from_nseconds(stats.end.saturating_sub(stats.start)),
        bytes: std::fs::metadata(output).map_or(0, |m| m.len()),
        frames: stats.frames(),
        audio_packets: stats.audio_packets,
    })
}

/// The hidden file a repair of `path` in place writes first.
pub fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}{TEMP_SUFFIX}"))
}

#[derive(Clone, Default)]
struct Stats {
    has_video: bool,
    video_frames: u64,
    audio_packets: u64,
    start: u64,
    end: u64,
}

impl Stats {
    fn blocks(&self) -> u64 {
        self.video_frames + self.audio_packets
    }

    /// As `file-closed` counts: video frames, or audio packets without video.
    fn frames(&self) -> u64 {
        if self.has_video {
            self.video_frames
        } else {
            self.audio_packets
        }
    }
}

/// A regular file that can be read; its size.
fn check_input(input: &Path) -> Result<u64, glib::Error> {
    let meta = std::fs::metadata(input).map_err(|e| {
        glib::Error::new(
            gst::ResourceError::NotFound,
            &format!("Cannot read '{}': {e}", input.display()),
        )
    })?;
    if !meta.is_file() {
        return Err(glib::Error::new(
            gst::ResourceError::OpenRead,
            &format!("Cannot repair '{}': not a regular file", input.display()),
        ));
    }
    Ok(meta.len())
}

/// Whether `b` names the file `a` names (writing it would cut what is being read).
fn is_same_file(a: &Path, b: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (std::fs::metadata(a), std::fs::metadata(b)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

/// The container of a file, from its first bytes: an ISO BMFF (MP4) file's leading
/// `ftyp` box, or a WebM or Matroska file's EBML DocType.
fn parse_format(head: &[u8]) -> Option<Container> {
    let doc_type = parse_doc_type(head);
    Container::of_file(head.get(4..8) == Some(b"ftyp"), doc_type.as_deref())
}

/// The container of the file `input`.
fn container_of(input: &Path) -> Result<Container, glib::Error> {
    let mut head = Vec::new();
    std::fs::File::open(input)
        .and_then(|f| f.take(4096).read_to_end(&mut head))
        .map_err(|e| {
            glib::Error::new(
                gst::ResourceError::OpenRead,
                &format!("Cannot read '{}': {e}", input.display()),
            )
        })?;
    parse_format(&head).ok_or_else(|| {
        glib::Error::new(
            gst::StreamError::WrongType,
            &format!(
                "Cannot repair '{}': not a WebM, Matroska or MP4 file",
                input.display()
            ),
        )
    })
}

/// An EBML variable-length number at the start of `data`: its value (without the length
/// marker unless `keep_marker`) and its length.
fn vint(data: &[u8], keep_marker: bool) -> Option<(u64, usize)> {
    let first = *data.first()?;
    let len = first.leading_zeros() as usize + 1;
    if len > 8 || data.len() < len {
        return None;
    }
    let mut value = if keep_marker {
        u64::from(first)
    } else {
        u64::from(first) & (0xFF >> len)
    };
    for b in &data[1..len] {
        value = (value << 8) | u64::from(*b);
    }
    Some((value, len))
}

/// The DocType in an EBML header, from the first bytes of a file.
fn parse_doc_type(data: &[u8]) -> Option<String> {
    const EBML: u64 = 0x1A45_DFA3;
    const DOC_TYPE: u64 = 0x4282;
    let (id, n) = vint(data, true)?;
    if id != EBML {
        return None;
    }
    let (size, m) = vint(&data[n..], false)?;
    let body = data.get(n + m..)?;
    let mut header = &body[..body.len().min(size as usize)];
    while !header.is_empty() {
        let (id, n) = vint(header, true)?;
        let (size, m) = vint(&header[n..], false)?;
        let end = (n + m).checked_add(usize::try_from(size).ok()?)?;
        let payload = header.get(n + m..end)?;
        if id == DOC_TYPE {
            let text = String::from_utf8_lossy(payload);
            return Some(text.trim_end_matches('\0').to_string());
        }
        header = &header[end..];
    }
    None
}

/// The parser that gives `mp4mux` what it needs of a track `qtdemux` gives (Opus
/// caps without their header, for one), by the track's media type.
fn mp4_parser(media: &str) -> Option<&'static str> {
    Some(match media {
        "video/x-h264" => "h264parse",
        "video/x-h265" => "h265parse",
        "video/x-av1" => "av1parse",
        "video/x-vp9" => "vp9parse",
        "audio/x-opus" => "opusparse",
        "audio/mpeg" => "aacparse",
        _ => return None,
    })
}

/// Links a demuxed audio or video track to the muxer through a queue (the demuxer
/// feeds every track from one thread, and the muxer waits for all of them), and with
/// `parse` through its parser; other tracks go to a fakesink.
fn add_track(
    pipeline: &gst::Pipeline,
    mux: &gst::Element,
    pad: &gst::Pad,
    stats: &Arc<Mutex<Stats>>,
    parse: bool,
) -> Result<(), String> {
    let caps = pad.current_caps().or_else(|| pad.allowed_caps());
    let media = caps
        .as_ref()
        .and_then(|c| c.structure(0))
        .map(|s| s.name().to_string())
        .unwrap_or_default();
    let template = if media.starts_with("video/") {
        Some("video_%u")
    } else if media.starts_with("audio/") {
        Some("audio_%u")
    } else {
        None
    };
    let Some(template) = template else {
        let sink = make("fakesink").map_err(|e| e.to_string())?;
        sink.set_property("sync", false);
        sink.set_property("async", false);
        pipeline.add(&sink).map_err(|e| e.to_string())?;
        sink.sync_state_with_parent().map_err(|e| e.to_string())?;
        let sink_pad = sink.static_pad("sink").ok_or("fakesink has no pad")?;
        return pad.link(&sink_pad).map(|_| ()).map_err(|e| e.to_string());
    };
    let queue = make("queue").map_err(|e| e.to_string())?;
    queue.set_property("max-size-buffers", 0u32);
    queue.set_property("max-size-time", 0u64);
    queue.set_property("max-size-bytes", MAX_TRACK_LEAD_BYTES);
    pipeline.add(&queue).map_err(|e| e.to_string())?;
    let mux_pad = mux
        .request_pad_simple(template)
        .ok_or_else(|| format!("the muxer takes no more {media} tracks"))?;
    let parser = match mp4_parser(&media).filter(|_| parse) {
        Some(factory) => Some(make(factory).map_err(|e| e.to_string())?),
        None => None,
    };
    let queue_src = queue.static_pad("src").ok_or("queue has no src pad")?;
    let to_mux = match &parser {
        Some(parser) => {
            pipeline.add(parser).map_err(|e| e.to_string())?;
            let parser_sink = parser.static_pad("sink").ok_or("a parser without a pad")?;
            queue_src
                .link(&parser_sink)
                .map_err(|_| format!("{} cannot parse {media}", parser.name()))?;
            parser.static_pad("src").ok_or("a parser without a pad")?
        }
        None => queue_src,
    };
    to_mux
        .link(&mux_pad)
        .map_err(|_| format!("{} cannot store {media}", mux.name()))?;
    if let Some(parser) = &parser {
        parser.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    queue.sync_state_with_parent().map_err(|e| e.to_string())?;
    let queue_sink = queue.static_pad("sink").ok_or("queue has no sink pad")?;
    pad.link(&queue_sink).map_err(|e| e.to_string())?;
    let video = template == "video_%u";
    if video {
        stats.lock().unwrap().has_video = true;
    }
    let stats = stats.clone();
    pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
            if let Some(pts) = buffer.pts().or(buffer.dts()) {
                let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                let mut s = stats.lock().unwrap();
                s.start = if s.blocks() == 0 {
                    pts.nseconds()
                } else {
                    s.start.min(pts.nseconds())
                };
                s.end = s.end.max(end.nseconds());
                if video {
                    s.video_frames += 1;
                } else {
                    s.audio_packets += 1;
                }
            }
        }
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// A copy runs at disk speed (a few hundred MB/s); the deadline only catches a copy
/// that stalls.
fn deadline_for(size: u64) -> Duration {
    Duration::from_secs(60 + size / (16 * 1024 * 1024))
}

/// Plays the pipeline to its end.
fn run(pipeline: &gst::Pipeline, limit: Duration) -> Result<(), glib::Error> {
    let bus = pipeline.bus().expect("a pipeline has a bus");
    if pipeline.set_state(gst::State::Playing).is_err() {
        let error = bus
            .pop_filtered(&[gst::MessageType::Error])
            .and_then(|msg| match msg.view() {
                gst::MessageView::Error(e) => Some(e.error()),
                _ => None,
            });
        return Err(error.unwrap_or_else(|| {
            glib::Error::new(gst::ResourceError::Failed, "the copy did not start")
        }));
    }
    let deadline = Instant::now() + limit;
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(msg) = bus.timed_pop_filtered(
            gst::ClockTime::from_nseconds(left.as_nanos() as u64),
            &[gst::MessageType::Eos, gst::MessageType::Error],
        ) else {
            break;
        };
        match msg.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Error(e) => return Err(e.error()),
            _ => {}
        }
    }
    Err(glib::Error::new(
        gst::ResourceError::Failed,
        &format!("the copy did not finish within {} s", limit.as_secs()),
    ))
}

/// Renames `temp` over `path` once its bytes are on disk, keeping `path`'s permissions:
/// a power cut then leaves either the old file or the new one, never an empty one.
fn replace(temp: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::File::open(temp)?.sync_all()?;
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(temp, meta.permissions());
    }
    std::fs::rename(temp, path)?;
    let folder = crate::mediarecorder::naming::folder_of(path);
    let _ = std::fs::File::open(folder).and_then(|d| d.sync_all());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doc_types_are_read_from_the_ebml_header() {
        // EBML header: EBMLVersion 1, DocType "webm", DocTypeVersion 4.
        let mut header = vec![0x1A, 0x45, 0xDF, 0xA3, 0x8F];
        header.extend_from_slice(&[0x42, 0x86, 0x81, 0x01]);
        header.extend_from_slice(&[0x42, 0x82, 0x84, b'w', b'e', b'b', b'm']);
        header.extend_from_slice(&[0x42, 0x87, 0x81, 0x04]);
        header.extend_from_slice(&[0x18, 0x53, 0x80, 0x67]);
        assert_eq!(parse_doc_type(&header).as_deref(), Some("webm"));
        // Cut inside the DocType, or not EBML at all.
        assert_eq!(parse_doc_type(&header[..12]), None);
        assert_eq!(parse_doc_type(b"RIFF\0\0\0\0WAVE"), None);
        assert_eq!(parse_doc_type(&[]), None);
        assert_eq!(parse_format(&header), Some(Container::WebM));
        assert_eq!(parse_format(b"\0\0\0\x18ftypiso6"), Some(Container::Mp4));
        assert_eq!(parse_format(b"\0\0\0\x18moov"), None);
    }

    #[test]
    fn a_symlink_at_the_temporary_name_is_replaced_not_followed() {
        let dir = std::env::temp_dir().join(format!("mr-repair-temp-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, b"keep").unwrap();
        let temp = temp_path(&dir.join("rec.webm"));
        std::os::unix::fs::symlink(&victim, &temp).unwrap();
        let made = create_temp(&temp).unwrap();
        let through = by_descriptor(&made).unwrap();
        std::fs::write(&through, b"copy").unwrap();
        assert_eq!(std::fs::read(&victim).unwrap(), b"keep");
        assert_eq!(std::fs::read(&temp).unwrap(), b"copy");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn the_temporary_file_is_hidden_beside_the_original() {
        assert_eq!(
            temp_path(Path::new("/d/rec-00001.webm")),
            Path::new("/d/.rec-00001.webm.mediarecorder-repair")
        );
        assert_eq!(
            temp_path(Path::new("out.webm")),
            Path::new(".out.webm.mediarecorder-repair")
        );
    }
}
