//! Which way up a picture is shown: the `image-orientation` tag a phone's file (its MP4
//! display matrix) or a camera mounted sideways sends. A recording is made upright:
//! the pictures are turned before the encoder, since GStreamer 1.22's muxers write no
//! orientation of their own (mp4mux leaves the display matrix at identity, and
//! Matroska has none), so video that would otherwise be kept as it is is re-encoded.

/// A picture's orientation, as the `image-orientation` tag names it: how the stored
/// picture is turned for display.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Orientation {
    #[default]
    Upright,
    Rotate90,
    Rotate180,
    Rotate270,
    Flip,
    FlipRotate90,
    FlipRotate180,
    FlipRotate270,
}

impl Orientation {
    /// The tag's value (`rotate-90`, `flip-rotate-0` ...); `None` for a value it does
    /// not define.
    pub fn from_tag(value: &str) -> Option<Self> {
        Some(match value {
            "rotate-0" => Orientation::Upright,
            "rotate-90" => Orientation::Rotate90,
            "rotate-180" => Orientation::Rotate180,
            "rotate-270" => Orientation::Rotate270,
            "flip-rotate-0" => Orientation::Flip,
            "flip-rotate-90" => Orientation::FlipRotate90,
            "flip-rotate-180" => Orientation::FlipRotate180,
            "flip-rotate-270" => Orientation::FlipRotate270,
            _ => return None,
        })
    }

    /// The tag's value for this orientation.
    pub fn tag(self) -> &'static str {
        match self {
            Orientation::Upright => "rotate-0",
            Orientation::Rotate90 => "rotate-90",
            Orientation::Rotate180 => "rotate-180",
            Orientation::Rotate270 => "rotate-270",
            Orientation::Flip => "flip-rotate-0",
            Orientation::FlipRotate90 => "flip-rotate-90",
            Orientation::FlipRotate180 => "flip-rotate-180",
            Orientation::FlipRotate270 => "flip-rotate-270",
        }
    }

    pub fn is_upright(self) -> bool {
        self == Orientation::Upright
    }

    /// Turned upright, the picture's width and height trade places.
    pub fn swaps_sides(self) -> bool {
        matches!(
            self,
            Orientation::Rotate90
                | Orientation::Rotate270
                | Orientation::FlipRotate90
                | Orientation::FlipRotate270
        )
    }

    /// The size of a `width` x `height` picture once turned upright.
    pub fn upright_size(self, width: u32, height: u32) -> (u32, u32) {
        if self.swaps_sides() {
            (height, width)
        } else {
            (width, height)
        }
    }

    /// `videoflip`'s `video-direction` that turns the picture upright (the mapping
    /// `video-direction=auto` applies to the tag).
    pub fn video_direction(self) -> &'static str {
        match self {
            Orientation::Upright => "identity",
            Orientation::Rotate90 => "90r",
            Orientation::Rotate180 => "180",
            Orientation::Rotate270 => "90l",
            Orientation::Flip => "horiz",
            Orientation::FlipRotate90 => "ul-lr",
            Orientation::FlipRotate180 => "vert",
            Orientation::FlipRotate270 => "ur-ll",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_held_upright_records_portrait() {
        let o = Orientation::from_tag("rotate-90").unwrap();
        assert_eq!(o.upright_size(1280, 720), (720, 1280));
        assert_eq!(o.video_direction(), "90r");
        let o = Orientation::from_tag("rotate-180").unwrap();
        assert_eq!(o.upright_size(1280, 720), (1280, 720));
        assert!(!o.is_upright());
        assert!(Orientation::from_tag("rotate-0").unwrap().is_upright());
        assert_eq!(Orientation::from_tag("sideways"), None);
    }
}
