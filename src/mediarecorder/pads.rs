//! The element's pads: each request pad gets a branch (converters, encoder, queue,
//! stage) built for the caps that arrive, rebuilt when the input format changes.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;

use super::branch::{self, EncoderParams};
use super::engine::Capture;
use super::entry::{EntryTimes, PacketLength};
use super::imp::{MediaRecorder, CAT};
use super::mimetype::Codec;
use super::orientation::Orientation;
use super::recording::audio_rate;
use super::state::{self, BitrateMode, CaptureLog, LateDrop, RecorderState, Stream};
use super::timeline::Kind;

impl MediaRecorder {
    /// Changes one stream's record under the state lock.
    fn with_stream<T>(&self, id: usize, change: impl FnOnce(&mut Stream) -> T) -> Option<T> {
        self.state
            .lock()
            .unwrap()
            .streams
            .iter_mut()
            .find(|s| s.id == id)
            .map(change)
    }

    pub(super) fn add_stream(
        &self,
        templ: &gst::PadTemplate,
        name: Option<&str>,
    ) -> Option<gst::Pad> {
        let mut state = self.state.lock().unwrap();
        if state.recorder() != RecorderState::Inactive {
            drop(state);
            gst::element_imp_warning!(
                self,
                gst::CoreError::Pad,
                ("A pad cannot be added while recording: stop the recording first")
            );
            return None;
        }
        let prefix = templ.name_template().trim_end_matches("%u").to_string();
        let name = match name {
            Some(n) => n.to_string(),
            None => (0..)
                .map(|i| format!("{prefix}{i}"))
                .find(|n| !state.streams.iter().any(|s| s.pad.name() == n.as_str()))?,
        };
        if state.streams.iter().any(|s| s.pad.name() == name.as_str()) {
            return None;
        }
        let id = state.next_stream_id;
        state.next_stream_id += 1;
        drop(state);

        // The pad's target: a passthrough that stays where the branch starts, whatever
        // the chain after it (built when caps arrive, rebuilt when they change).
        let entry = gst::ElementFactory::make("identity")
            .name(format!("entry-{name}"))
            .property("silent", true)
            // nobody listens: an emission per frame for nothing
            .property("signal-handoffs", false)
            .build()
            .ok()?;
        let queue = gst::ElementFactory::make("queue")
            .name(format!("queue-{name}"))
            .build()
            .ok()?;
        let sink = gst_app::AppSink::builder()
            .name(format!("stage-{name}"))
            .sync(false)
            .async_(false)
            .enable_last_sample(false)
            .build();
        let weak = self.obj().downgrade();
        let weak_eos = weak.clone();
        sink.set_callbacks(
            gst_app::AppSinkCallbacks::builder()
                .new_sample(move |appsink| {
                    let sample = appsink
                        .pull_sample()
                        .map_err(|_| gst::FlowError::Flushing)?;
                    match weak.upgrade() {
                        Some(obj) => obj.imp().on_sample(id, sample),
                        None => Err(gst::FlowError::Flushing),
                    }
                })
                .eos(move |_| {
                    if let Some(obj) = weak_eos.upgrade() {
                        obj.imp().on_eos(id);
                    }
                })
                .build(),
        );
        let obj = self.obj();
        // The queue joins the bin only for a chain that encodes (see `build_chain`).
        obj.add_many([&entry, sink.upcast_ref()]).ok()?;
        // Frames without timestamps are stamped where they enter, with the running
        // time they arrive at: the encoder and the stage then keep their spacing. Then
        // times are put in order for the encoder (see `entry`), except where frames
        // are reordered (B-frames: a DTS apart from the PTS). Done in the pad's own
        // chain function, not a probe: a probe is a second call per frame.
        let times = if templ.name_template().starts_with("audio") {
            EntryTimes::for_audio()
        } else {
            EntryTimes::default()
        };
        let times = Arc::new(std::sync::Mutex::new(times));
        let times_for_events = times.clone();
        let times_for_lists = times.clone();
        let orphaned = Arc::new(AtomicBool::new(false));
        let left_out = orphaned.clone();
        let left_out_lists = orphaned.clone();
        let entry_sink = entry.static_pad("sink")?;
        let pad = gst::GhostPad::builder_from_template_with_target(templ, &entry_sink)
            .ok()?
            .name(name.as_str())
            .query_function(|pad, parent, query| {
                MediaRecorder::catch_panic_pad_function(
                    parent,
                    || false,
                    |imp| imp.sink_query(pad.upcast_ref(), query),
                )
            })
            .chain_function(move |pad, parent, mut buffer| {
                MediaRecorder::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| {
                        if left_out.load(Ordering::Relaxed) {
                            // A stream that came after the recording began without
                            // it: taken (its source goes on, no error) and left out.
                            return Ok(gst::FlowSuccess::Ok);
                        }
                        imp.stamp_entering(pad.upcast_ref(), &times, &mut buffer);
                        let flow = gst::ProxyPad::chain_default(pad, Some(&*imp.obj()), buffer);
                        imp.flow_for_upstream(pad, flow)
                    },
                )
            })
            .chain_list_function(move |pad, parent, mut list| {
                MediaRecorder::catch_panic_pad_function(
                    parent,
                    || Err(gst::FlowError::Error),
                    |imp| {
                        if left_out_lists.load(Ordering::Relaxed) {
                            return Ok(gst::FlowSuccess::Ok);
                        }
                        list.make_mut().foreach_mut(|mut buffer, _| {
                            imp.stamp_entering(pad.upcast_ref(), &times_for_lists, &mut buffer);
                            std::ops::ControlFlow::Continue(Some(buffer))
                        });
                        let flow = gst::ProxyPad::chain_list_default(pad, Some(&*imp.obj()), list);
                        imp.flow_for_upstream(pad, flow)
                    },
                )
            })
            .build();
        let weak = self.obj().downgrade();
        entry_sink.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
            if let Some(gst::PadProbeData::Event(event)) = &info.data {
                if matches!(
                    event.view(),
                    gst::EventView::FlushStop(_) | gst::EventView::Segment(_)
                ) {
                    times_for_events.lock().unwrap().reset();
                }
                if let gst::EventView::Caps(c) = event.view() {
                    times_for_events
                        .lock()
                        .unwrap()
                        .set_packet_length(packet_length(c.caps()));
                    if let Some(obj) = weak.upgrade() {
                        // On failure an error is posted; the unlinked queue then
                        // stops the stream.
                        obj.imp().on_caps(id, c.caps());
                    }
                }
                if let gst::EventView::Tag(t) = event.view() {
                    let orientation = t
                        .tag()
                        .get::<gst::tags::ImageOrientation>()
                        .and_then(|v| Orientation::from_tag(v.get()));
                    if let (Some(orientation), Some(obj)) = (orientation, weak.upgrade()) {
                        obj.imp().on_orientation(id, orientation);
                    }
                }
            }
            gst::PadProbeReturn::Ok
        });
        let late_drop = Arc::new(LateDrop::default());
        let captures = Arc::new(CaptureLog::default());
        if let Some(entry_src) = entry.static_pad("src") {
            let weak = self.obj().downgrade();
            entry_src.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |pad, info| {
                if let Some(gst::PadProbeData::Event(event)) = &info.data {
                    if let gst::EventView::Caps(c) = event.view() {
                        if let Some(obj) = weak.upgrade() {
                            obj.imp().on_queued_caps(id, pad, c.caps());
                        }
                    }
                }
                gst::PadProbeReturn::Ok
            });
        }
        let _ = entry.sync_state_with_parent();
        let _ = sink.sync_state_with_parent();
        if obj.current_state() > gst::State::Null {
            let _ = pad.set_active(true);
        }
        obj.add_pad(&pad).ok()?;
        self.state.lock().unwrap().streams.push(Stream {
            id,
            pad: pad.clone(),
            entry,
            queue,
            sink,
            middle: Vec::new(),
            kind: None,
            codec: None,
            input: None,
            encoded_caps: None,
            live: false,
            eos: false,
            captures,
            late_drop,
            audio_gaps: Arc::default(),
            silence: Arc::default(),
            orphaned,
            orientation: Orientation::default(),
            orientation_in_container: None,
        });
        gst::debug!(CAT, imp = self, "Added pad {name}");
        Some(pad.upcast())
    }

    /// A frame entering by `pad`: stamped with the running time it arrives at if it
    /// has no timestamp, given its packet's duration if it has none, and its time put
    /// in order (see `EntryTimes`).
    fn stamp_entering(
        &self,
        pad: &gst::Pad,
        times: &std::sync::Mutex<EntryTimes>,
        buffer: &mut gst::Buffer,
    ) {
        if buffer.pts().is_none() && buffer.dts().is_none() {
            // Before the first PLAYING (a preroll) there is no clock yet: the
            // running time is still 0. A frame left without a time would make
            // libvpx drop every frame after it.
            let now = self
                .obj()
                .current_running_time()
                .unwrap_or(gst::ClockTime::ZERO);
            let segment = pad.sticky_event::<gst::event::Segment>(0);
            let pts = segment.and_then(|seg| {
                seg.segment()
                    .downcast_ref::<gst::ClockTime>()
                    .and_then(|seg| seg.position_from_running_time(now))
            });
            if let Some(pts) = pts {
                buffer.make_mut().set_pts(pts);
            }
        }
        let mut times = times.lock().unwrap();
        if buffer.duration().is_none() && times.knows_packet_length() {
            // Encoded audio from a depayloader comes without durations: without
            // them, packets kept as they are could not be laid end to end.
            let duration = buffer
                .map_readable()
                .ok()
                .and_then(|data| times.packet_duration(&data));
            if let Some(duration) = duration {
                buffer
                    .make_mut()
                    .set_duration(gst::ClockTime::from_nseconds(duration));
            }
        }
        if let Some(pts) = buffer
            .pts()
            .filter(|p| buffer.dts().is_none_or(|d| d == *p))
        {
            let duration = buffer.duration().map(gst::ClockTime::nseconds);
            let placed = times.place(pts.nseconds(), duration);
            let placed = gst::ClockTime::from_nseconds(placed);
            if placed != pts {
                let b = buffer.make_mut();
                b.set_pts(placed);
                if b.dts().is_some() {
                    b.set_dts(placed);
                }
            }
        }
    }

    /// What a sink pad returns upstream for `flow` from its branch (see
    /// `state::flow_for_upstream`).
    fn flow_for_upstream(
        &self,
        pad: &gst::GhostPad,
        flow: Result<gst::FlowSuccess, gst::FlowError>,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let Err(error) = flow else {
            return flow;
        };
        let ended = self.state.lock().unwrap().ended_by_duration;
        let returned = state::flow_for_upstream(flow, ended);
        if returned != flow {
            gst::info!(
                CAT,
                imp = self,
                "Pad {}: the branch returned {error:?} after the recording reached its \
                 duration: EOS upstream",
                pad.name()
            );
        }
        returned
    }

    pub(super) fn remove_stream(&self, pad: &gst::Pad) {
        let stream = {
            let mut state = self.state.lock().unwrap();
            let Some(pos) = state
                .streams
                .iter()
                .position(|s| s.pad.upcast_ref::<gst::Pad>() == pad)
            else {
                return;
            };
            state.streams.remove(pos)
        };
        // The web API's "track removed": the recording ends with an error.
        self.end_recording(Some(glib::Error::new(
            gst::CoreError::Pad,
            &format!("Pad {} was released while recording", pad.name()),
        )));
        let obj = self.obj();
        let _ = stream.pad.set_active(false);
        let _ = obj.remove_pad(&stream.pad);
        let mut elements = vec![stream.entry.clone(), stream.queue.clone()];
        elements.extend(stream.middle.iter().cloned());
        elements.push(stream.sink.upcast_ref::<gst::Element>().clone());
        for e in elements {
            let _ = e.set_state(gst::State::Null);
            // Bins being disposed release their pads after removing their children.
            if e.parent().as_ref() == Some(obj.upcast_ref::<gst::Object>()) {
                let _ = obj.remove(&e);
            }
        }
    }

    pub(super) fn sink_query(&self, pad: &gst::Pad, query: &mut gst::QueryRef) -> bool {
        let rtype = || self.settings.lock().unwrap().recording_type();
        match query.view_mut() {
            gst::QueryViewMut::Caps(q) => {
                let (has_chain, kind) = {
                    let state = self.state.lock().unwrap();
                    match state
                        .streams
                        .iter()
                        .find(|s| s.pad.upcast_ref::<gst::Pad>() == pad)
                    {
                        Some(s) => (!s.middle.is_empty(), s.likely_kind()),
                        None => (false, Kind::Video),
                    }
                };
                // The answer's order is what a source left free to choose picks (it
                // follows its own filter's order only where we give none): what the
                // encoder takes as it is comes first.
                let mut caps = branch::preferred_caps(&rtype(), kind);
                if has_chain {
                    // Once a chain exists, what it takes, still in that order (its own
                    // answer lists formats in the source's order: a renegotiation
                    // picked 12-bit 4:4:4 for vp9enc). A chain of no element would
                    // answer anything: the preferred caps stand.
                    let mut inner = gst::query::Caps::new(None);
                    if gst::Pad::query_default(pad, Some(&*self.obj()), &mut inner) {
                        if let Some(chain) = inner.result() {
                            let mut ordered =
                                caps.intersect_with_mode(chain, gst::CapsIntersectMode::First);
                            ordered.merge(chain.to_owned());
                            caps = ordered;
                        }
                    }
                }
                let caps = match q.filter() {
                    Some(filter) => caps.intersect_with_mode(filter, gst::CapsIntersectMode::First),
                    None => caps,
                };
                q.set_result(&caps);
                true
            }
            gst::QueryViewMut::AcceptCaps(q) => {
                let ok = q.caps().can_intersect(&branch::accepted_caps(&rtype()));
                q.set_result(ok);
                true
            }
            _ => gst::Pad::query_default(pad, Some(&*self.obj()), query),
        }
    }

    /// Builds a branch's encoder chain for the first caps it gets.
    pub(super) fn on_caps(&self, id: usize, caps: &gst::CapsRef) -> bool {
        let kind = branch::kind_of(caps);
        {
            let mut state = self.state.lock().unwrap();
            let other_has_kind =
                kind.is_some() && state.streams.iter().any(|s| s.id != id && s.kind == kind);
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return false;
            };
            if stream.kind.is_some() {
                // Built already: a change of input is handled where the queue hands it on.
                return true;
            }
            if stream.orphaned.load(Ordering::Relaxed) {
                let pad = stream.pad.name();
                let after = state.first_caps_at.map(|t| t.elapsed().as_secs_f64());
                drop(state);
                gst::element_imp_warning!(
                    self,
                    gst::StreamError::Failed,
                    (
                        "Pad {} got its stream {:.1} s after the others, when the recording \
                         had begun without it: it is left out",
                        pad,
                        after.unwrap_or(0.0)
                    )
                );
                return true;
            }
            if other_has_kind {
                let what = if kind == Some(Kind::Video) {
                    "video"
                } else {
                    "audio"
                };
                let pad = stream.pad.name();
                drop(state);
                gst::element_imp_error!(
                    self,
                    gst::StreamError::Format,
                    (
                        "A recording holds one {} stream: pad {} carries a second one ({})",
                        what,
                        pad,
                        caps
                    )
                );
                return false;
            }
            stream.kind = kind;
            state
                .first_caps_at
                .get_or_insert_with(std::time::Instant::now);
        }
        let built = self.build_chain(id, caps, None);
        if !built {
            self.with_stream(id, |s| s.kind = None);
        }
        built
    }

    /// A stream's pictures are to be shown turned (`image-orientation`): its chain is
    /// rebuilt to turn them upright, before the frames that follow the tag.
    pub(super) fn on_orientation(&self, id: usize, orientation: Orientation) {
        let rebuild = {
            let mut state = self.state.lock().unwrap();
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return;
            };
            if stream.orientation == orientation {
                return;
            }
            stream.orientation = orientation;
            let built = stream.kind == Some(Kind::Video) && stream.is_built();
            // A track that has begun keeps its codec.
            built.then(|| {
                (
                    stream.encoded_caps.as_ref().and(stream.codec),
                    stream.pad.clone(),
                )
            })
        };
        let Some((keep, pad)) = rebuild else { return };
        let Some(caps) = pad.current_caps() else {
            return;
        };
        gst::info!(
            CAT,
            imp = self,
            "Pad {} shows its pictures turned ({orientation:?}): recording them upright",
            pad.name()
        );
        self.build_chain(id, &caps, keep);
    }

    /// Caps leaving a branch's entry: a different input format than the chain was built
    /// for (a codec that changed mid-recording) gets a new chain that keeps the track's
    /// codec, re-encoding rather than failing.
    pub(super) fn on_queued_caps(&self, id: usize, entry_src: &gst::Pad, caps: &gst::CapsRef) {
        let name = caps.structure(0).map(|s| s.name().to_string());
        let keep = {
            let state = self.state.lock().unwrap();
            let Some(stream) = state.streams.iter().find(|s| s.id == id) else {
                return;
            };
            if stream.input.is_none() || stream.input == name {
                return;
            }
            stream.codec
        };
        let Some(keep) = keep else { return };
        gst::info!(
            CAT,
            imp = self,
            "Input changed to {caps}: re-encoding to {keep:?}"
        );
        if self.build_chain(id, caps, Some(keep)) {
            // The new chain has not seen the stream start: it must precede the caps.
            if let (Some(event), Some(peer)) = (
                entry_src.sticky_event::<gst::event::StreamStart>(0),
                entry_src.peer(),
            ) {
                peer.send_event(event);
            }
        }
    }

    /// Builds (or rebuilds) the chain between a branch's entry and its stage.
    pub(super) fn build_chain(&self, id: usize, caps: &gst::CapsRef, keep: Option<Codec>) -> bool {
        let settings = self.settings.lock().unwrap().clone();
        let rtype = settings.recording_type();
        let (entry, queue, sink, pad, kinds, old, late_drop, captures, orientation) = {
            let mut state = self.state.lock().unwrap();
            let kinds: Vec<Kind> = state
                .streams
                .iter()
                .filter(|s| s.id == id || s.pad.is_linked())
                .map(|s| s.likely_kind())
                .collect();
            let Some(stream) = state.streams.iter_mut().find(|s| s.id == id) else {
                return false;
            };
            (
                stream.entry.clone(),
                stream.queue.clone(),
                stream.sink.clone(),
                stream.pad.clone(),
                kinds,
                std::mem::take(&mut stream.middle),
                stream.late_drop.clone(),
                stream.captures.clone(),
                stream.orientation,
            )
        };

        let mut latency = gst::query::Latency::new();
        let live = pad.peer_query(&mut latency) && latency.result().0;
        let upstream_latency = latency.result().1.nseconds();
        let (video_bps, audio_bps) =
            settings.bitrates(kinds.contains(&Kind::Video), kinds.contains(&Kind::Audio));
        let params = EncoderParams {
            video_bps,
            audio_bps,
            total_bps: (settings.total_bps > 0).then_some(settings.total_bps),
            audio_constant: settings.audio_bitrate_mode == BitrateMode::Constant,
            keyframe_interval_ms: settings.keyframe_interval_ms(),
            keyframe_count: (settings.keyframe_interval_count > 0)
                .then_some(settings.keyframe_interval_count),
            live,
            video_encoder: settings.video_encoder.clone(),
            audio_encoder: settings.audio_encoder.clone(),
        };
        let plan = match branch::chain_for(caps, &rtype, &params, keep, orientation) {
            Ok(plan) => plan,
            Err(err) => {
                let err = err.to_glib();
                self.post_error(&err, Some(&format!("pad {}, caps {caps}", pad.name())));
                return false;
            }
        };
        for warning in &plan.warnings {
            gst::warning!(CAT, imp = self, "{warning}");
            gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{}", warning));
        }
        let obj = self.obj();
        for pad in [entry.static_pad("src"), queue.static_pad("src")]
            .into_iter()
            .flatten()
        {
            if let Some(peer) = pad.peer() {
                let _ = pad.unlink(&peer);
            }
        }
        for e in &old {
            let _ = e.set_state(gst::State::Null);
            let _ = obj.remove(e);
        }
        // Only raw frames may be dropped: a compressed one lost would break every frame
        // that refers to it, up to the next keyframe.
        let raw = caps
            .structure(0)
            .is_some_and(|s| s.name().ends_with("/x-raw"));
        let droppable = live && raw && keep.is_none();
        late_drop.latency.store(upstream_latency, Ordering::Relaxed);
        late_drop.enabled.store(droppable, Ordering::Relaxed);
        // Only live: a file's stage must preroll, so its frames always flow. Only
        // video: audio skipped would come back as a gap its `audiorate` fills.
        late_drop
            .skip_when_idle
            .store(droppable && plan.kind == Kind::Video, Ordering::Relaxed);
        if let Some(entry_src) = entry.static_pad("src") {
            self.drop_when_late(&entry_src, &sink, &late_drop, captures, droppable);
        }
        self.count_audio_gaps(id, &plan.elements);
        // Raw frames are encoded in the thread that made them, as in a hand pipeline: a
        // queue before the encoder cost 6 % more CPU at 720p30 (the frames, 1.4 MB
        // each, change threads and cores). A live source's late frames are dropped
        // at the entry instead. The queue takes encoded frames, so one stage's preroll
        // never blocks a demuxer that feeds two pads. Frames kept as they are reach the
        // stage in the thread that brought them, with no queue: there is no encoder to
        // wait for, and a thread per track cost each kept-as-is camera a third more CPU
        // than a hand pipeline (BENCHMARKS.md, "Cameras kept as they are").
        let queued = plan.encodes;
        if !Self::place_queue(&obj, &queue, queued) {
            self.post_error(
                &glib::Error::new(gst::CoreError::Failed, "Could not place the queue"),
                Some(&format!("pad {}", pad.name())),
            );
            return false;
        }
        let mut chain: Vec<gst::Element> = vec![entry.clone()];
        chain.extend(plan.elements.iter().cloned());
        if queued {
            chain.push(queue.clone());
        }
        chain.push(sink.upcast_ref::<gst::Element>().clone());
        if obj.add_many(&plan.elements).is_err() || gst::Element::link_many(&chain).is_err() {
            self.post_error(
                &glib::Error::new(
                    gst::CoreError::Negotiation,
                    "Could not link the encoder chain",
                ),
                Some(&format!("caps {caps}")),
            );
            return false;
        }
        if queued {
            let _ = queue.sync_state_with_parent();
        }
        for e in plan.elements.iter().rev() {
            let _ = e.sync_state_with_parent();
        }
        gst::info!(
            CAT,
            imp = self,
            "Pad {} records {:?} as {:?} (live: {live})",
            pad.name(),
            plan.kind,
            plan.codec
        );
        if keep.is_none() {
            if let Some(why) = branch::reencode_reason(caps, &rtype, plan.codec) {
                gst::element_imp_info!(
                    self,
                    gst::StreamError::Format,
                    ("Pad {}: {}", pad.name(), why),
                    ["Pad {}: {}", pad.name(), why]
                );
            }
        }
        let input = caps.structure(0).map(|s| s.name().to_string());
        self.with_stream(id, |s| {
            s.orientation_in_container = plan.orientation_in_container;
            s.codec = Some(plan.codec);
            s.middle = plan.elements;
            s.input = input;
            s.live = live;
        });
        true
    }

    /// Puts a branch's queue into the bin (`queued`) or takes it out, so that a branch
    /// without one has no queue thread. False if the bin refused.
    fn place_queue(obj: &super::MediaRecorder, queue: &gst::Element, queued: bool) -> bool {
        let in_bin = queue.parent().as_ref() == Some(obj.upcast_ref::<gst::Object>());
        match (queued, in_bin) {
            (true, false) => obj.add(queue).is_ok(),
            (false, true) => {
                let _ = queue.set_state(gst::State::Null);
                obj.remove(queue).is_ok()
            }
            _ => true,
        }
    }

    /// Counts the gaps `audiorate` fills, and the silence it adds.
    fn count_audio_gaps(&self, id: usize, elements: &[gst::Element]) {
        let Some(audiorate) = elements
            .iter()
            .find(|e| e.factory().is_some_and(|f| f.name() == "audiorate"))
        else {
            return;
        };
        let Some((gaps, silence)) =
            self.with_stream(id, |s| (s.audio_gaps.clone(), s.silence.clone()))
        else {
            return;
        };
        let counted = AtomicU64::new(0);
        audiorate.connect_notify(Some("add"), move |element, _| {
            let added = element.property::<u64>("add");
            let new = added.saturating_sub(counted.swap(added, Ordering::Relaxed));
            let rate = element
                .static_pad("src")
                .and_then(|p| p.current_caps())
                .map_or(48_000, |caps| audio_rate(Kind::Audio, &caps));
            gaps.fetch_add(1, Ordering::Relaxed);
            silence.fetch_add(new * 1_000_000_000 / rate, Ordering::Relaxed);
        });
    }

    /// A live source's raw frame that reaches the entry more than `DROP_LEVEL` past
    /// due is dropped (and counted) instead of encoded: a machine that cannot keep up
    /// stays within a second of real time rather than falling further behind. Live
    /// raw video is not encoded at all while nothing records (`records_nothing`).
    ///
    /// The probe is there only while `droppable` (live raw input): frames kept as they
    /// are do not pass through it.
    fn drop_when_late(
        &self,
        entry_src: &gst::Pad,
        stage: &gst_app::AppSink,
        late_drop: &Arc<LateDrop>,
        captures: Arc<CaptureLog>,
        droppable: bool,
    ) {
        let mut placed = late_drop.probe.lock().unwrap();
        match (droppable, placed.is_some()) {
            (true, false) => {}
            (false, true) => {
                if let Some(id) = placed.take() {
                    entry_src.remove_probe(id);
                }
                return;
            }
            _ => return,
        }
        let rule = late_drop.clone();
        let weak = self.obj().downgrade();
        let stage = stage.downgrade();
        *placed = entry_src.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if !rule.enabled.load(Ordering::Relaxed) {
                return gst::PadProbeReturn::Ok;
            }
            let Some(obj) = weak.upgrade() else {
                return gst::PadProbeReturn::Ok;
            };
            let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else {
                return gst::PadProbeReturn::Ok;
            };
            if rule.skip_when_idle.load(Ordering::Relaxed) {
                // Skipped while nothing records (asked first: while recording, the
                // stage goes unread) and once the stage has prerolled: one that has
                // not must get a frame, or the pipeline never reaches PLAYING (an
                // application waiting for it to start the recording would wait forever).
                let idle = obj.imp().records_nothing();
                let prerolled = || {
                    stage.upgrade().is_some_and(|s| {
                        s.current_state() == gst::State::Playing
                            && s.pending_state() == gst::State::VoidPending
                    })
                };
                if idle && prerolled() {
                    rule.skipped.store(true, Ordering::Relaxed);
                    drop(info.take_buffer());
                    return gst::PadProbeReturn::Handled;
                }
                if rule.skipped.swap(false, Ordering::Relaxed) {
                    // The encoder's last picture is from before the skip: the next
                    // one must not refer to it.
                    if let Some(peer) = pad.peer() {
                        peer.send_event(
                            gst_video::DownstreamForceKeyUnitEvent::builder()
                                .all_headers(true)
                                .build(),
                        );
                    }
                }
            }
            let frame_rt = buffer.pts().and_then(|pts| {
                pad.sticky_event::<gst::event::Segment>(0)?
                    .segment()
                    .downcast_ref::<gst::ClockTime>()?
                    .to_running_time(pts)
            });
            let (Some(frame_rt), Some(now)) = (frame_rt, obj.current_running_time()) else {
                return gst::PadProbeReturn::Ok;
            };
            let lost = rule.drops(frame_rt.nseconds(), now.nseconds());
            captures.push(Capture {
                rt: frame_rt.nseconds(),
                duration: buffer.duration().map(gst::ClockTime::nseconds),
                lost,
            });
            if !lost {
                return gst::PadProbeReturn::Ok;
            }
            let dropped = rule.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if dropped == 1 || dropped.is_multiple_of(100) {
                gst::element_warning!(
                    obj,
                    gst::CoreError::Failed,
                    (
                        "The encoder cannot keep up with the live source: {} frames dropped so far",
                        dropped
                    )
                );
            }
            // Taken and handled here: returning Drop makes GStreamer 1.22 unref the
            // buffer the binding already released (a GLib critical per frame).
            drop(info.take_buffer());
            gst::PadProbeReturn::Handled
        });
    }
}

/// How long a packet of encoded audio in `caps` lasts, for packets without a duration.
fn packet_length(caps: &gst::CapsRef) -> Option<PacketLength> {
    let s = caps.structure(0)?;
    match s.name().as_str() {
        "audio/mpeg" if s.get::<i32>("mpegversion").ok() == Some(4) => {
            let config = s.get::<gst::Buffer>("codec_data").ok();
            let config = config.as_ref().and_then(|b| b.map_readable().ok());
            let rate = s
                .get::<i32>("rate")
                .ok()
                .and_then(|r| u64::try_from(r).ok());
            PacketLength::aac(config.as_deref(), rate)
        }
        "audio/x-opus" => Some(PacketLength::OpusToc),
        _ => None,
    }
}
