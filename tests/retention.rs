//! Retention by bytes: a segmented recording that runs for several times its budget
//! keeps the newest files within it, and never touches a file it did not write.

mod common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::*;
use gst::prelude::*;

fn files_in(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with("ret-"))
        .collect();
    files.sort();
    files
}

#[test]
fn a_byte_budget_keeps_the_newest_files_within_it() {
    init();
    let dir = tmp_dir("retention_bytes");
    let foreign = dir.join("ret-foreign.webm");
    std::fs::write(&foreign, vec![7u8; 200_000]).unwrap();
    std::fs::write(dir.join("notes.txt"), b"not ours").unwrap();
    // 500 ms files of about 12 kB; a 50 kB budget holds three or four of the 16.
    let budget = 50_000u64;
    let p = launch(&format!(
        "mediarecorder name=r duration=8000 max-file-duration=500 \
         video-keyframe-interval-duration=500 max-total-bytes={budget} \
         location={}/ret-%05d.webm \
         videotestsrc is-live=true pattern=ball ! video/x-raw,width=160,height=120 ! r. \
         audiotestsrc is-live=true ! r.",
        dir.display()
    ));
    let removed = Arc::new(Mutex::new(Vec::new()));
    let closed = Arc::new(Mutex::new(Vec::new()));
    let (rm, cl) = (removed.clone(), closed.clone());
    // The budget holds whenever a file is finished, not just at the end.
    let budget_held = Arc::new(Mutex::new(true));
    let held = budget_held.clone();
    let watched = dir.clone();
    p.bus().unwrap().set_sync_handler(move |_, msg| {
        if let gst::MessageView::Element(e) = msg.view() {
            let Some(s) = e.structure() else {
                return gst::BusSyncReply::Pass;
            };
            match s.name().as_str() {
                "mediarecorder-file-removed" => {
                    assert_eq!(s.get::<String>("reason").unwrap(), "max-total-bytes");
                    rm.lock()
                        .unwrap()
                        .push(s.get::<String>("location").unwrap());
                }
                "mediarecorder-file-closed" => {
                    cl.lock()
                        .unwrap()
                        .push(s.get::<String>("location").unwrap());
                    let ours: u64 = files_in(&watched)
                        .iter()
                        .filter(|p| !p.ends_with("ret-foreign.webm"))
                        .map(|p| std::fs::metadata(p).map_or(0, |m| m.len()))
                        .sum();
                    // Checked before the retention of this file ran: one file over.
                    if ours > budget + 20_000 {
                        *held.lock().unwrap() = false;
                    }
                }
                _ => {}
            }
        }
        gst::BusSyncReply::Pass
    });
    expect_eos(&p, Duration::from_secs(30));
    drop(p);

    let closed = closed.lock().unwrap().clone();
    let removed = removed.lock().unwrap().clone();
    assert!(closed.len() >= 12, "{} files written", closed.len());
    assert!(!removed.is_empty());
    let kept: Vec<_> = files_in(&dir)
        .into_iter()
        .filter(|p| *p != foreign)
        .collect();
    let total: u64 = kept
        .iter()
        .map(|p| std::fs::metadata(p).unwrap().len())
        .sum();
    assert!(total <= budget, "{total} bytes kept of {budget}");
    assert!(
        *budget_held.lock().unwrap(),
        "the budget was passed while recording"
    );
    // The newest files are the ones kept, oldest removed first.
    let kept_names: Vec<String> = kept.iter().map(|p| p.display().to_string()).collect();
    assert_eq!(kept_names, closed[closed.len() - kept.len()..].to_vec());
    assert_eq!(removed, closed[..removed.len()].to_vec());
    assert_eq!(removed.len() + kept.len(), closed.len());
    for file in &kept {
        assert!(decode(file).frames() > 0, "{} plays", file.display());
    }
    // Files the recording did not write are untouched.
    assert_eq!(std::fs::metadata(&foreign).unwrap().len(), 200_000);
    assert!(dir.join("notes.txt").exists());
}
