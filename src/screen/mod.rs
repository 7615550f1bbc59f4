//! TEMPORARY stub (replaced by the real screen layer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rect {
    pub x: u16,
    pub y: u16,
    pub w: u16,
    pub h: u16,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Channel {
    pub offset: u8,
    pub length: u8,
}
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PixelFormat {
    pub bits_per_pixel: u8,
    pub red: Channel,
    pub green: Channel,
    pub blue: Channel,
}
pub struct Frame<'a> {
    pub width: u16,
    pub height: u16,
    pub stride: usize,
    pub format: PixelFormat,
    pub data: &'a [u8],
}
pub trait Source {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError>;
    fn describe(&self) -> String;
}
#[derive(Debug)]
pub struct SourceError(String);
impl std::fmt::Display for SourceError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
struct Syn {
    w: u16,
    h: u16,
    data: Vec<u8>,
}
impl Source for Syn {
    fn frame(&mut self) -> Result<Frame<'_>, SourceError> {
        Ok(Frame {
            width: self.w,
            height: self.h,
            stride: self.w as usize * 4,
            format: PixelFormat {
                bits_per_pixel: 32,
                red: Channel {
                    offset: 16,
                    length: 8,
                },
                green: Channel {
                    offset: 8,
                    length: 8,
                },
                blue: Channel {
                    offset: 0,
                    length: 8,
                },
            },
            data: &self.data,
        })
    }
    fn describe(&self) -> String {
        "stub".into()
    }
}
pub fn open(_spec: &str) -> Result<Box<dyn Source>, SourceError> {
    Ok(Box::new(Syn {
        w: 640,
        h: 480,
        data: vec![0x80; 640 * 480 * 4],
    }))
}
pub struct Damage;
impl Damage {
    pub fn new(_w: u16, _h: u16) -> Self {
        Damage
    }
    pub fn scan(&mut self, _f: &Frame, _out: &mut Vec<Rect>) {}
    pub fn invalidate(&mut self, _r: Rect) {}
    pub fn invalidate_all(&mut self) {}
}
pub struct BitmapEncoder;
#[derive(Debug)]
pub struct EncodeError;
impl std::fmt::Display for EncodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("stub")
    }
}
impl BitmapEncoder {
    pub fn new() -> Self {
        BitmapEncoder
    }
    pub fn encode(&mut self, _f: &Frame, _r: Rect, _o: &mut Vec<u8>) -> Result<usize, EncodeError> {
        Ok(0)
    }
}
