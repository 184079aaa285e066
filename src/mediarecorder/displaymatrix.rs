//! An MP4 video track's display matrix, written into the header `mp4mux` makes:
//! GStreamer 1.22's `mp4mux` ignores the `image-orientation` tag and always writes the
//! identity. So video kept as it is (a phone's or a camera's H.264) is stored as it
//! came and shown turned by the player, as the source was, without re-encoding.
//!
//! Pure byte work: the `moov` box a buffer holds is found, and in it the first track
//! whose handler is video; its `tkhd` matrix (same size) is overwritten in place.

use super::orientation::Orientation;

/// 1.0 in the matrix's 16.16 fixed point, and its last column's 2.30 one.
const ONE: u32 = 0x0001_0000;
const MINUS_ONE: u32 = 0xFFFF_0000;
const W_ONE: u32 = 0x4000_0000;

/// The display matrix for `orientation`, `None` for upright and for mirrored pictures
/// (GStreamer's demuxer reads back rotations only).
pub fn matrix(orientation: Orientation) -> Option<[u32; 9]> {
    let (a, b, c, d) = match orientation {
        Orientation::Rotate90 => (0, ONE, MINUS_ONE, 0),
        Orientation::Rotate180 => (MINUS_ONE, 0, 0, MINUS_ONE),
        Orientation::Rotate270 => (0, MINUS_ONE, ONE, 0),
        _ => return None,
    };
    Some([a, b, 0, c, d, 0, 0, 0, W_ONE])
}

/// The field of a track's caps that carries its orientation from the stage to the
/// muxer's session, where it is taken off the caps and written into the header.
const CAPS_FIELD: &str = "mediarecorder-orientation";

/// `caps` marked with the orientation the file is to say (unchanged for none).
pub fn mark(caps: gst::Caps, orientation: Option<Orientation>) -> gst::Caps {
    let Some(orientation) = orientation else {
        return caps;
    };
    let mut caps = caps;
    if let Some(s) = caps.make_mut().structure_mut(0) {
        s.set(CAPS_FIELD, orientation.tag());
    }
    caps
}

/// The matrix a track's caps ask for, and the caps without the mark.
pub fn take_mark(caps: &gst::Caps) -> (gst::Caps, Option<[u32; 9]>) {
    let mut caps = caps.clone();
    let orientation = caps
        .structure(0)
        .and_then(|s| s.get::<&str>(CAPS_FIELD).ok())
        .and_then(Orientation::from_tag);
    if orientation.is_some() {
        if let Some(s) = caps.make_mut().structure_mut(0) {
            s.remove_field(CAPS_FIELD);
        }
    }
    (caps, orientation.and_then(matrix))
}

/// One box: its type, and where its content starts and the box ends in `data`.
fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], usize, usize)> + '_ {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(pos..pos + 8)?;
        let size = u32::from_be_bytes(header[0..4].try_into().ok()?) as usize;
        let kind: [u8; 4] = header[4..8].try_into().ok()?;
        let (content, end) = match size {
            0 => (pos + 8, data.len()),
            1 => {
                let large = data.get(pos + 8..pos + 16)?;
                let large = usize::try_from(u64::from_be_bytes(large.try_into().ok()?)).ok()?;
                (pos + 16, pos.checked_add(large)?)
            }
            n => (pos + 8, pos.checked_add(n)?),
        };
        if end > data.len() || end < content {
            return None;
        }
        pos = end;
        Some((kind, content, end))
    })
}

fn child(data: &[u8], kind: &[u8; 4]) -> Option<(usize, usize)> {
    boxes(data)
        .find(|(k, _, _)| k == kind)
        .map(|(_, start, end)| (start, end))
}

/// Whether the track box `trak` holds video (its `mdia`/`hdlr` handler is `vide`).
fn is_video(trak: &[u8]) -> bool {
    let Some((start, end)) = child(trak, b"mdia") else {
        return false;
    };
    let mdia = &trak[start..end];
    // hdlr: version and flags, pre_defined, then the handler type.
    child(mdia, b"hdlr").is_some_and(|(s, e)| mdia.get(s + 8..s + 12) == Some(b"vide") && e > s)
}

/// Writes `matrix` into the first video track header of the `moov` box at the top
/// level of `data`; false when `data` holds none.
pub fn write_video_matrix(data: &mut [u8], matrix: &[u32; 9]) -> bool {
    let Some((moov_start, moov_end)) = child(data, b"moov") else {
        return false;
    };
    let traks: Vec<(usize, usize)> = boxes(&data[moov_start..moov_end])
        .filter(|(k, _, _)| k == b"trak")
        .map(|(_, s, e)| (moov_start + s, moov_start + e))
        .collect();
    for (start, end) in traks {
        if !is_video(&data[start..end]) {
            continue;
        }
        let Some((tkhd, tkhd_end)) = child(&data[start..end], b"tkhd") else {
            return false;
        };
        let tkhd = start + tkhd;
        // Version 0: creation, modification, track id, reserved, duration (4 bytes
        // each); version 1 has 8-byte times and duration. Then 8 reserved, layer,
        // group, volume, reserved (2 each), then the matrix.
        let times = if data[tkhd] == 1 {
            8 + 8 + 4 + 4 + 8
        } else {
            5 * 4
        };
        let at = tkhd + 4 + times + 8 + 4 * 2;
        if at + 36 > start + tkhd_end {
            return false;
        }
        for (i, value) in matrix.iter().enumerate() {
            data[at + 4 * i..at + 4 * i + 4].copy_from_slice(&value.to_be_bytes());
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mp4_box(kind: &[u8; 4], content: &[u8]) -> Vec<u8> {
        let mut b = ((content.len() + 8) as u32).to_be_bytes().to_vec();
        b.extend_from_slice(kind);
        b.extend_from_slice(content);
        b
    }

    /// A track with a version 0 header and the handler `handler`.
    fn trak(handler: &[u8; 4]) -> Vec<u8> {
        let mut tkhd = vec![0u8; 4 + 20 + 8 + 8];
        for v in [ONE, 0, 0, 0, ONE, 0, 0, 0, W_ONE] {
            tkhd.extend_from_slice(&v.to_be_bytes());
        }
        tkhd.extend_from_slice(&[0u8; 8]);
        let mut hdlr = vec![0u8; 8];
        hdlr.extend_from_slice(handler);
        hdlr.extend_from_slice(&[0u8; 12]);
        let mdia = mp4_box(b"mdia", &mp4_box(b"hdlr", &hdlr));
        mp4_box(b"trak", &[mp4_box(b"tkhd", &tkhd), mdia].concat())
    }

    fn matrix_of(data: &[u8], trak_index: usize) -> Vec<u32> {
        let tkhds: Vec<usize> = data
            .windows(4)
            .enumerate()
            .filter(|(_, w)| *w == b"tkhd")
            .map(|(i, _)| i + 4)
            .collect();
        let at = tkhds[trak_index] + 4 + 20 + 8 + 8;
        (0..9)
            .map(|i| u32::from_be_bytes(data[at + 4 * i..at + 4 * i + 4].try_into().unwrap()))
            .collect()
    }

    #[test]
    fn the_video_track_of_a_header_is_turned() {
        let ftyp = mp4_box(b"ftyp", b"iso4\0\0\0\0");
        let moov = mp4_box(b"moov", &[trak(b"soun"), trak(b"vide")].concat());
        let mut data = [ftyp, moov].concat();
        let turned = matrix(Orientation::Rotate90).unwrap();
        assert!(write_video_matrix(&mut data, &turned));
        assert_eq!(matrix_of(&data, 0), [ONE, 0, 0, 0, ONE, 0, 0, 0, W_ONE]);
        assert_eq!(matrix_of(&data, 1), turned);
    }

    #[test]
    fn media_and_broken_boxes_are_left_alone() {
        let mut mdat = mp4_box(b"mdat", &[1, 2, 3]);
        let before = mdat.clone();
        assert!(!write_video_matrix(
            &mut mdat,
            &matrix(Orientation::Rotate180).unwrap()
        ));
        assert_eq!(mdat, before);
        // A box claiming more bytes than there are.
        let mut short = vec![0, 0, 1, 0, b'm', b'o', b'o', b'v', 0];
        assert!(!write_video_matrix(&mut short, &[0; 9]));
        assert_eq!(matrix(Orientation::Flip), None);
        assert_eq!(matrix(Orientation::Upright), None);
    }
}
