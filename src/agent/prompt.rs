//! The local prompt: the shell draws what `prompt::View` says for the session the local
//! user's answers act on and reads the local keyboards while something shows; the core
//! hands their answers to the policy as `By::LocalPrompt`, exactly as the control socket's.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use mio::{Registry, Token};

use super::core::{Core, Now};
use crate::policy::{AccessPolicy, AnswerError, By};
use crate::prompt::keyboards::Keyboards;
use crate::prompt::{Answer, Drawer, Keys, View};
use crate::screen::{Panel, open_panel};
use crate::{info, warn};

/// The keyboards' tokens: far above any client's (those count up from FIRST_CLIENT).
pub(super) const KEYBOARDS: Token = Token(usize::MAX - 2 * crate::prompt::keyboards::MAX_KEYBOARDS);
/// How often a shown box is checked (and drawn again if the UI painted over it).
const CHECK_INTERVAL: Duration = Duration::from_secs(1);

/// Where the prompt draws and which keyboards it reads.
#[derive(Clone, Debug)]
pub struct PromptConfig {
    /// The screen to draw on, as `--screen` spells it: `fbdev:/dev/fb0` (or `xwd:PATH`).
    pub screen: String,
    /// Where the evdev nodes are (/dev/input).
    pub input_dir: PathBuf,
    /// Stay hidden while a UI registered on the control socket as the prompt (`auto`).
    pub defer_to_ui: bool,
    /// Where the box on the screen is recorded while it shows (RAM: /run), so an agent that
    /// starts after one died with a box up takes it away; None: not recorded.
    pub leftover: Option<PathBuf>,
}

pub(super) struct LocalPrompt {
    panel: Box<dyn Panel>,
    drawer: Drawer,
    view: View,
    keyboards: Keyboards,
    keys: Keys,
    next_check: Option<Instant>,
    leftover: Option<PathBuf>,
    /// The drawer's revision the record holds, so an unchanged box is not written again
    /// (compared by number: the box is a few hundred KB).
    recorded: Option<u64>,
}

impl LocalPrompt {
    /// None, with a log line, when the framebuffer cannot be opened: no prompt then.
    pub(super) fn open(config: &PromptConfig) -> Option<LocalPrompt> {
        match open_panel(&config.screen) {
            Ok(mut panel) => {
                info!("local prompt on {}", config.screen);
                if let Some(path) = &config.leftover {
                    take_back_leftover(panel.as_mut(), path);
                }
                Some(LocalPrompt {
                    panel,
                    drawer: Drawer::default(),
                    view: View::Hidden,
                    keyboards: Keyboards::new(&config.input_dir, KEYBOARDS),
                    keys: Keys::default(),
                    next_check: None,
                    leftover: config.leftover.clone(),
                    recorded: None,
                })
            }
            Err(e) => {
                warn!(
                    "local prompt off: {e}; only the control socket (if any) can answer requests"
                );
                None
            }
        }
    }

    pub(super) fn owns(&self, token: Token) -> bool {
        self.keyboards.owns(token)
    }

    /// When the loop must come back for the prompt: `change` (the countdown's next second),
    /// or the next check of a shown box.
    pub(super) fn next_deadline(&self, change: Option<Instant>) -> Option<Instant> {
        match (change, self.next_check) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Shows `view` (drawing only what changed), opens the keyboards when a box appears and
    /// closes them when it goes.
    pub(super) fn show(&mut self, registry: &Registry, view: View, now: Instant) {
        let check_due = self.next_check.is_some_and(|at| now >= at);
        if view == self.view && !check_due {
            return;
        }
        let appears = self.view == View::Hidden && view != View::Hidden;
        if appears {
            // Hot-plugged keyboards count from the next request on.
            self.keyboards.scan(registry);
            if self.keyboards.count() == 0 {
                warn!("local prompt: no local keyboard; answer on the control socket");
            }
        } else if view == View::Hidden && self.view != View::Hidden {
            self.keyboards.close_all(registry);
            self.keys.hidden();
        }
        if view != View::Hidden && !view.same_box(&self.view) {
            // Keys already down, and any in the next second, do not answer this box.
            self.keys.shown(now, self.keyboards.held_keys());
        }
        let lines = view.lines();
        let content = view.style().map(|style| (style, lines.as_slice()));
        let kind_changed = std::mem::discriminant(&view) != std::mem::discriminant(&self.view);
        match self.drawer.show(self.panel.as_mut(), content) {
            Ok(Some(rect)) if kind_changed => {
                info!("local prompt: \"{}\" at {rect}", lines.join(" / "))
            }
            Ok(None) if kind_changed => info!("local prompt: removed, the screen restored"),
            Ok(_) => {}
            Err(e) => warn!("local prompt: drawing failed: {e}"),
        }
        self.next_check = (view != View::Hidden).then(|| now + CHECK_INTERVAL);
        self.view = view;
        self.record();
    }

    /// Keeps the record of the box on the screen in step with it (see `leftover`).
    fn record(&mut self) {
        let Some(path) = &self.leftover else {
            return;
        };
        let revision = self.drawer.revision();
        if self.recorded == Some(revision) {
            return;
        }
        let saved = self.drawer.saved();
        let result = match &saved {
            Some(s) => postcard::to_stdvec(s)
                .map_err(std::io::Error::other)
                .and_then(|bytes| crate::state::fsio::write_atomic(path, &bytes, 0o600)),
            None => std::fs::remove_file(path).or_else(|e| match e.kind() {
                std::io::ErrorKind::NotFound => Ok(()),
                _ => Err(e),
            }),
        };
        match result {
            Ok(()) => self.recorded = Some(revision),
            Err(e) => warn!(
                "local prompt: cannot record the box at {}: {e}",
                path.display()
            ),
        }
    }

    /// A local keyboard is readable: the answers its keys gave, and the view they answer.
    pub(super) fn read_keys(
        &mut self,
        registry: &Registry,
        token: Token,
        now: Instant,
    ) -> (Vec<Answer>, View) {
        let answers = self.keyboards.read(registry, token, &mut self.keys, now);
        (answers, self.view.clone())
    }

    /// Takes the box away (the agent stops).
    pub(super) fn hide(&mut self, registry: &Registry) {
        self.keyboards.close_all(registry);
        self.keys.hidden();
        if let Err(e) = self.drawer.hide(self.panel.as_mut()) {
            warn!("local prompt: restoring the screen failed: {e}");
        }
        self.view = View::Hidden;
        self.record();
    }
}

/// Largest record read back: two copies of a box far larger than any the prompt draws.
const MAX_RECORD: u64 = 32 << 20;

/// Our own regular file only: not a link, a FIFO (open would block the start) or a file
/// someone else could have written.
fn read_bounded(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NOFOLLOW | nix::libc::O_NONBLOCK)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file()
        || meta.uid() != nix::unistd::geteuid().as_raw()
        || meta.mode() & 0o022 != 0
    {
        return Err(std::io::Error::other(
            "not a regular file of ours that only we may write",
        ));
    }
    let mut bytes = Vec::new();
    file.take(MAX_RECORD + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_RECORD {
        return Err(std::io::Error::other("larger than any box record"));
    }
    Ok(bytes)
}

/// A box an agent before this one left on the screen (it was killed with the box up) is
/// taken away, where it still shows: the user must not see "connected" with nobody there.
fn take_back_leftover(panel: &mut dyn Panel, path: &std::path::Path) {
    let bytes = match read_bounded(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            warn!("local prompt: cannot read {}: {e}", path.display());
            let _ = std::fs::remove_file(path);
            return;
        }
    };
    match postcard::from_bytes::<crate::prompt::Saved>(&bytes) {
        Err(e) => warn!(
            "local prompt: {} is no box record ({e}); ignored",
            path.display()
        ),
        Ok(saved) => match Drawer::take_back(panel, saved) {
            Ok(true) => {
                info!("local prompt: took away the box an earlier agent left on the screen")
            }
            Ok(false) => info!(
                "local prompt: the box an earlier agent left does not fit this screen mode \
                 (the UI has redrawn since); left alone"
            ),
            Err(e) => warn!("local prompt: the box an earlier agent left stays: {e}"),
        },
    }
    if let Err(e) = std::fs::remove_file(path) {
        warn!("local prompt: cannot remove {}: {e}", path.display());
    }
}

impl Core {
    /// The policy the box shows: the session's, unless the image's own UI registered as the
    /// prompt (`ui_prompts`) and `--local-prompt auto` leaves the asking to it.
    fn prompt_policy(&self, ui_prompts: bool) -> Option<&AccessPolicy> {
        let deferred = ui_prompts
            && self
                .config
                .local_prompt
                .as_ref()
                .is_some_and(|c| c.defer_to_ui);
        if deferred {
            return None;
        }
        self.session.as_ref().map(|s| &s.policy)
    }

    /// What the local prompt shows now.
    pub fn prompt_view(&self, now: Now, ui_prompts: bool) -> View {
        View::of(self.prompt_policy(ui_prompts), now.mono)
    }

    /// When what the local prompt shows changes by itself (a countdown's next second).
    pub fn prompt_next_change(&self, now: Now, ui_prompts: bool) -> Option<Instant> {
        View::next_change(self.prompt_policy(ui_prompts), now.mono)
    }

    /// A key the local user pressed while `shown` was on the screen.
    pub fn on_prompt_answer(&mut self, now: Now, answer: Answer, shown: &View) {
        let now = self.enter(now);
        let question = match shown {
            View::Hidden => return,
            View::Ask { question, .. } => Some(*question),
            View::Connected { .. } => None,
        };
        let Some(policy) = self.session.as_mut().map(|s| &mut s.policy) else {
            return;
        };
        let by = By::LocalPrompt;
        // The question on the screen is the one answered: a stale key cannot answer the next.
        let result = match (answer, question) {
            (Answer::Accept, Some(q)) => policy.user_accepts(now, by, Some(q)),
            (Answer::Reject, Some(q)) => policy.user_rejects(now, by, Some(q)),
            (Answer::Terminate, _) => policy.user_terminates(now, by),
            (_, None) => Err(AnswerError::NothingPending),
        };
        match result {
            Ok(()) => info!("local prompt: {answer:?} from the local keyboard"),
            Err(e) => info!("local prompt: {answer:?} ignored: {e}"),
        }
    }
}
