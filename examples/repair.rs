//! Finalizes a WebM, Matroska or fragmented MP4 file that was cut short (a killed recorder, a power
//! cut, a copy that stopped), so that players can seek in it again.
//!
//! ```sh
//! cargo run --example repair -- FILE [OUT]
//! ```
//!
//! Without OUT the file is repaired in place (a hidden copy beside it replaces it once
//! complete; the original stays as it was if anything fails). With OUT the repaired copy
//! goes there and FILE is only read. The media is copied, not re-encoded: the result
//! holds every complete frame of the original, with Duration and Cues.
//!
//! `mediarecorder` does this by itself for its own files at the next start; this is
//! for files from elsewhere.

use std::path::PathBuf;
use std::process::ExitCode;

use gstmediarecorder::repair;

const USAGE: &str = "usage: repair FILE [OUT]

  FILE  a WebM, Matroska or MP4 file cut short (repaired in place)
  OUT   write the repaired copy here instead, leaving FILE as it is";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (input, output) = match args.as_slice() {
        [help] if help == "-h" || help == "--help" => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        [input] => (PathBuf::from(input), None),
        [input, output] => (PathBuf::from(input), Some(PathBuf::from(output))),
        _ => {
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    if let Err(e) = gst::init() {
        eprintln!("Cannot initialize GStreamer: {e}");
        return ExitCode::FAILURE;
    }
    let result = match &output {
        Some(output) => repair::repair_to(&input, output),
        None => repair::repair_file(&input),
    };
    match result {
        Ok(report) => {
            println!(
                "{}: {:.3} s of media, {} frames, {} audio packets, {} bytes",
                output.as_ref().unwrap_or(&input).display(),
                report.duration.nseconds() as f64 / 1e9,
                report.frames,
                report.audio_packets,
                report.bytes
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{}", err.message());
            ExitCode::FAILURE
        }
    }
}
