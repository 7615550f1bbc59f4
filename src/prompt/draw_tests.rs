use super::*;
use crate::prompt::compose::BORDER;

/// A framebuffer in memory: packed rows in `format`.
struct MemPanel {
    width: u16,
    height: u16,
    format: PixelFormat,
    bytes: Vec<u8>,
    writes: usize,
}

impl MemPanel {
    fn new(width: u16, height: u16, format: PixelFormat) -> MemPanel {
        let bpp = format.bytes_per_pixel();
        // A busy picture, so a wrong restore cannot pass by luck.
        let bytes = (0..usize::from(width) * usize::from(height) * bpp)
            .map(|i| (i * 7 + i / 13) as u8)
            .collect();
        MemPanel {
            width,
            height,
            format,
            bytes,
            writes: 0,
        }
    }

    fn rows(&self, rect: Rect) -> impl Iterator<Item = std::ops::Range<usize>> + '_ {
        let bpp = self.format.bytes_per_pixel();
        let stride = usize::from(self.width) * bpp;
        (rect.y..rect.y + rect.h).map(move |y| {
            let start = usize::from(y) * stride + usize::from(rect.x) * bpp;
            start..start + usize::from(rect.w) * bpp
        })
    }

    fn paint(&mut self, x: u16, y: u16, value: u8) {
        let bpp = self.format.bytes_per_pixel();
        let i = (usize::from(y) * usize::from(self.width) + usize::from(x)) * bpp;
        self.bytes[i..i + bpp].fill(value);
    }
}

impl Panel for MemPanel {
    fn geometry(&mut self) -> io::Result<(u16, u16, PixelFormat)> {
        Ok((self.width, self.height, self.format))
    }

    fn read(&mut self, rect: Rect) -> io::Result<Vec<u8>> {
        Ok(self
            .rows(rect)
            .flat_map(|r| self.bytes[r].to_vec())
            .collect())
    }

    fn write(&mut self, rect: Rect, bytes: &[u8]) -> io::Result<()> {
        self.writes += 1;
        let rows: Vec<_> = self.rows(rect).collect();
        let row_len = rows[0].len();
        for (r, chunk) in rows.into_iter().zip(bytes.chunks(row_len)) {
            self.bytes[r].copy_from_slice(chunk);
        }
        Ok(())
    }
}

fn text(lines: &[&str]) -> Vec<String> {
    lines.iter().map(|l| (*l).to_owned()).collect()
}

#[test]
fn show_then_hide_gives_back_every_byte() {
    for format in [PixelFormat::XRGB8888, PixelFormat::RGB565] {
        let mut panel = MemPanel::new(800, 600, format);
        let before = panel.bytes.clone();
        let mut drawer = Drawer::default();
        let ask = text(&["Remote administration request from 10.0.2.2", "30 s left"]);
        let rect = drawer
            .show(&mut panel, Some((Style::Question, &ask)))
            .unwrap()
            .unwrap();
        assert!(drawer.is_shown());
        assert_ne!(panel.bytes, before);
        // The box's corner has the border colour in the panel's format.
        let corner = panel.read(Rect::new(rect.x, rect.y, 1, 1)).unwrap();
        assert_eq!(corner, encode(&BORDER.to_le_bytes(), format));
        // Outside the box nothing changed.
        let above = Rect::new(0, 0, 800, rect.y);
        let mut pristine = MemPanel::new(800, 600, format);
        assert_eq!(panel.read(above).unwrap(), pristine.read(above).unwrap());
        drawer.hide(&mut panel).unwrap();
        assert_eq!(panel.bytes, before, "{format}");
        assert!(!drawer.is_shown());
    }
}

#[test]
fn a_countdown_rewrites_only_when_the_picture_changes_and_moving_restores_first() {
    let mut panel = MemPanel::new(1024, 768, PixelFormat::XRGB8888);
    let before = panel.bytes.clone();
    let mut drawer = Drawer::default();
    let at = |left: u32| text(&["Request from 10.0.2.2", &format!("{left:2} s left")]);
    let first = drawer
        .show(&mut panel, Some((Style::Question, &at(30))))
        .unwrap();
    let writes = panel.writes;
    assert_eq!(
        drawer
            .show(&mut panel, Some((Style::Question, &at(30))))
            .unwrap(),
        first
    );
    assert_eq!(panel.writes, writes, "same picture: no write");
    drawer
        .show(&mut panel, Some((Style::Question, &at(29))))
        .unwrap();
    assert_eq!(panel.writes, writes + 1);
    // Accepted: the question goes, the indicator comes at the top.
    let connected = text(&["Remote administrator 10.0.2.2 connected"]);
    let top = drawer
        .show(&mut panel, Some((Style::Indicator, &connected)))
        .unwrap()
        .unwrap();
    let q = first.unwrap();
    let mut pristine = MemPanel::new(1024, 768, PixelFormat::XRGB8888);
    assert_eq!(
        panel.read(q).unwrap(),
        pristine.read(q).unwrap(),
        "question area restored"
    );
    assert_ne!(panel.read(top).unwrap(), pristine.read(top).unwrap());
    drawer.show(&mut panel, None).unwrap();
    assert_eq!(panel.bytes, before);
}

#[test]
fn the_ui_painting_over_the_box_is_repaired_and_kept_on_restore() {
    let mut panel = MemPanel::new(640, 480, PixelFormat::XRGB8888);
    let mut drawer = Drawer::default();
    let line = text(&["connected"]);
    let rect = drawer
        .show(&mut panel, Some((Style::Indicator, &line)))
        .unwrap()
        .unwrap();
    // The UI repaints one pixel of the area.
    panel.paint(rect.x + 1, rect.y + 1, 0x55);
    let painted = panel.bytes.clone();
    drawer
        .show(&mut panel, Some((Style::Indicator, &line)))
        .unwrap();
    assert_ne!(
        panel.bytes, painted,
        "the box is drawn again over the UI's pixel"
    );
    drawer.hide(&mut panel).unwrap();
    let px = panel.read(Rect::new(rect.x + 1, rect.y + 1, 1, 1)).unwrap();
    assert_eq!(px, [0x55; 4], "what the UI painted is what belongs there");
}

#[test]
fn a_mode_change_forgets_the_saved_pixels() {
    let mut panel = MemPanel::new(640, 480, PixelFormat::XRGB8888);
    let mut drawer = Drawer::default();
    drawer
        .show(&mut panel, Some((Style::Indicator, &text(&["x"]))))
        .unwrap();
    let mut other = MemPanel::new(320, 240, PixelFormat::RGB565);
    let before = other.bytes.clone();
    drawer.hide(&mut other).unwrap();
    assert_eq!(other.bytes, before, "nothing written into the new mode");
    assert!(!drawer.is_shown());
}

/// Shows `lines`; true when the revision moved (checked against the saved box itself).
fn revision_moved(drawer: &mut Drawer, panel: &mut MemPanel, lines: Option<&[String]>) -> bool {
    let (before, last) = (drawer.saved(), drawer.revision());
    drawer
        .show(panel, lines.map(|l| (Style::Indicator, l)))
        .unwrap();
    let moved = drawer.revision() != last;
    assert_eq!(
        moved,
        drawer.saved() != before,
        "revision and saved box agree"
    );
    moved
}

#[test]
fn the_revision_moves_exactly_when_the_saved_box_changes() {
    let mut panel = MemPanel::new(640, 480, PixelFormat::XRGB8888);
    let mut drawer = Drawer::default();
    let (one, two) = (text(&["connected"]), text(&["connected", "view only"]));
    assert!(
        revision_moved(&mut drawer, &mut panel, Some(&one)),
        "a box appears"
    );
    assert!(
        !revision_moved(&mut drawer, &mut panel, Some(&one)),
        "nothing changed"
    );
    let rect = drawer
        .show(&mut panel, Some((Style::Indicator, &one)))
        .unwrap()
        .unwrap();
    panel.paint(rect.x + 1, rect.y + 1, 0x55);
    assert!(
        revision_moved(&mut drawer, &mut panel, Some(&one)),
        "painted over"
    );
    assert!(
        revision_moved(&mut drawer, &mut panel, Some(&two)),
        "new text"
    );
    assert!(
        revision_moved(&mut drawer, &mut panel, None),
        "the box goes"
    );
    assert!(!revision_moved(&mut drawer, &mut panel, None), "still none");
}
