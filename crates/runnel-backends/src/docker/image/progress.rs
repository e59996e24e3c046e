//! Docker's pull messages (one per layer event, dozens a second) turned into a few readable
//! lines: one when the pull starts, an aggregate at most every [`REPORT_EVERY`] while it runs
//! (layers done, bytes downloaded of the known total, a percentage), one when it ends.
//!
//! Must not: talk to Docker or keep time itself; the caller passes each message and `now`.

use std::time::{Duration, Instant};

/// The shortest time between two progress lines of one pull.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(1);

/// One layer, as the pull messages describe it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Layer {
    /// `Pulling fs layer`, `Waiting`: size not known yet.
    Queued,
    Downloading {
        current: u64,
        total: u64,
    },
    /// `Verifying Checksum`, `Download complete`.
    Downloaded {
        total: u64,
    },
    Extracting {
        total: u64,
    },
    /// `Pull complete`.
    Done {
        total: u64,
    },
    /// `Already exists`: nothing to download.
    Present,
}

/// The state of one pull; feed it every message with [`PullTracker::update`].
#[derive(Debug)]
pub(crate) struct PullTracker {
    image: String,
    started: Instant,
    last_report: Instant,
    changed: bool,
    /// In the order Docker named them.
    layers: Vec<(String, Layer)>,
    digest: Option<String>,
    up_to_date: bool,
}

impl PullTracker {
    pub(crate) fn new(image: &str, now: Instant) -> PullTracker {
        PullTracker {
            image: image.to_owned(),
            started: now,
            last_report: now,
            changed: false,
            layers: Vec::new(),
            digest: None,
            up_to_date: false,
        }
    }

    /// Takes one message (`id` is the layer for layer events); returns a line to show when
    /// one is due.
    pub(crate) fn update(
        &mut self,
        id: Option<&str>,
        status: &str,
        detail: Option<(i64, i64)>,
        now: Instant,
    ) -> Option<String> {
        if let Some(digest) = status.strip_prefix("Digest: ") {
            self.digest = Some(digest.trim().to_owned());
        } else if status.starts_with("Status: Image is up to date") {
            self.up_to_date = true;
        } else if let Some(id) = id {
            let known = self.layer(id);
            let sizes = detail.and_then(|(current, total)| {
                Some((u64::try_from(current).ok()?, u64::try_from(total).ok()?))
            });
            let total = known.map_or(0, Layer::total);
            let layer = match (status, sizes) {
                ("Pulling fs layer" | "Waiting", _) => Some(Layer::Queued),
                ("Downloading", Some((current, total))) => {
                    Some(Layer::Downloading { current, total })
                }
                ("Verifying Checksum" | "Download complete", _) => {
                    Some(Layer::Downloaded { total })
                }
                ("Extracting", Some((_, total))) => Some(Layer::Extracting { total }),
                ("Extracting", None) => Some(Layer::Extracting { total }),
                ("Pull complete", _) => Some(Layer::Done { total }),
                ("Already exists", _) => Some(Layer::Present),
                _ => None,
            };
            if let Some(layer) = layer {
                self.set_layer(id, layer);
                self.changed = true;
            }
        }
        if self.changed && now.duration_since(self.last_report) >= REPORT_EVERY {
            self.last_report = now;
            self.changed = false;
            return Some(self.progress_line());
        }
        None
    }

    /// The closing line of a pull that succeeded.
    pub(crate) fn finished(&self, now: Instant) -> String {
        let seconds = now.duration_since(self.started).as_secs_f64();
        let digest = self
            .digest
            .as_deref()
            .map(|digest| format!(", {}", short_digest(digest)))
            .unwrap_or_default();
        let fetched: Vec<&Layer> = self.fetched().collect();
        if self.up_to_date || fetched.is_empty() {
            return format!("{} is up to date ({seconds:.1} s{digest})", self.image);
        }
        let bytes: u64 = fetched.iter().map(|layer| layer.total()).sum();
        let present = self.layers.len() - fetched.len();
        let present = if present > 0 {
            format!(", {present} already present")
        } else {
            String::new()
        };
        format!(
            "pulled {} in {seconds:.1} s: {} downloaded in {}{present}{digest}",
            self.image,
            size(bytes),
            plural(fetched.len(), "layer"),
        )
    }

    fn progress_line(&self) -> String {
        let fetched: Vec<&Layer> = self.fetched().collect();
        let done = fetched
            .iter()
            .filter(|layer| matches!(layer, Layer::Done { .. }))
            .count();
        let (current, total) = fetched.iter().fold((0, 0), |(current, total), layer| {
            (current + layer.downloaded(), total + layer.total())
        });
        let mut line = format!(
            "pulling {}: {done} of {} done",
            self.image,
            plural(fetched.len(), "layer")
        );
        if let Some(percent) = current.saturating_mul(100).checked_div(total) {
            line.push_str(&format!(
                ", {} of {} downloaded ({percent}%)",
                size(current),
                size(total)
            ));
        }
        let extracting = fetched
            .iter()
            .filter(|layer| matches!(layer, Layer::Extracting { .. }))
            .count();
        if extracting > 0 {
            line.push_str(&format!(", extracting {}", plural(extracting, "layer")));
        }
        line
    }

    /// The layers this pull downloads (not those already present).
    fn fetched(&self) -> impl Iterator<Item = &Layer> {
        self.layers
            .iter()
            .map(|(_, layer)| layer)
            .filter(|layer| **layer != Layer::Present)
    }

    fn layer(&self, id: &str) -> Option<Layer> {
        self.layers
            .iter()
            .find(|(known, _)| known == id)
            .map(|(_, layer)| *layer)
    }

    fn set_layer(&mut self, id: &str, layer: Layer) {
        match self.layers.iter_mut().find(|(known, _)| known == id) {
            Some((_, known)) => *known = layer,
            None => self.layers.push((id.to_owned(), layer)),
        }
    }
}

impl Layer {
    fn total(self) -> u64 {
        match self {
            Layer::Queued | Layer::Present => 0,
            Layer::Downloading { total, .. }
            | Layer::Downloaded { total }
            | Layer::Extracting { total }
            | Layer::Done { total } => total,
        }
    }

    fn downloaded(self) -> u64 {
        match self {
            Layer::Downloading { current, .. } => current,
            other => other.total(),
        }
    }
}

fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Decimal units, as Docker prints them.
pub(crate) fn size(bytes: u64) -> String {
    const UNITS: [(&str, f64); 3] = [("GB", 1e9), ("MB", 1e6), ("kB", 1e3)];
    let value = bytes as f64;
    for (unit, scale) in UNITS {
        if value >= scale {
            return format!("{:.1} {unit}", value / scale);
        }
    }
    format!("{bytes} B")
}

/// `sha256:` and the first 12 hex digits, as `docker images` shows ids.
fn short_digest(digest: &str) -> String {
    match digest.split_once(':') {
        Some((algorithm, hex)) => format!("{algorithm}:{}", hex.get(..12).unwrap_or(hex)),
        None => digest.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Seconds since the start, layer id, status, current/total.
    type Event<'a> = (f64, Option<&'a str>, &'a str, Option<(i64, i64)>);

    /// Feeds the events and collects every line, the closing one at `end`.
    fn check(events: &[Event<'_>], end: f64) -> Vec<String> {
        let start = Instant::now();
        let at = |seconds: f64| start + Duration::from_secs_f64(seconds);
        let mut tracker = PullTracker::new("reg:5000/app:1", start);
        let mut lines: Vec<String> = events
            .iter()
            .filter_map(|(time, id, status, detail)| {
                tracker.update(*id, status, *detail, at(*time))
            })
            .collect();
        lines.push(tracker.finished(at(end)));
        lines
    }

    #[test]
    fn a_quick_pull_says_only_what_it_pulled() {
        let lines = check(
            &[
                (0.0, Some("1"), "Pulling from app", None),
                (0.0, Some("aaa"), "Already exists", None),
                (0.0, Some("bbb"), "Pulling fs layer", None),
                (0.1, Some("bbb"), "Downloading", Some((69_213, 4_001_424))),
                (0.2, Some("bbb"), "Download complete", None),
                (0.2, Some("bbb"), "Extracting", Some((65_536, 4_001_424))),
                (0.3, Some("bbb"), "Pull complete", None),
                (
                    0.3,
                    None,
                    "Digest: sha256:ec89a81b498013172a97bda44eb33efea96",
                    None,
                ),
                (
                    0.3,
                    None,
                    "Status: Downloaded newer image for reg:5000/app:1",
                    None,
                ),
            ],
            0.4,
        );
        assert_eq!(
            lines,
            [
                "pulled reg:5000/app:1 in 0.4 s: 4.0 MB downloaded in 1 layer, 1 already \
                 present, sha256:ec89a81b4980"
            ]
        );
    }

    #[test]
    fn a_long_pull_reports_about_once_a_second() {
        let mut events = vec![
            (0.0, Some("a"), "Pulling fs layer", None),
            (0.0, Some("b"), "Pulling fs layer", None),
        ];
        // Ten messages a second for three seconds: three progress lines, not thirty.
        for tenth in 1..30 {
            let current = i64::from(tenth) * 1_000_000;
            events.push((
                f64::from(tenth) / 10.0,
                Some("a"),
                "Downloading",
                Some((current, 30_000_000)),
            ));
        }
        events.push((3.0, Some("a"), "Download complete", None));
        events.push((3.1, Some("a"), "Extracting", Some((1, 30_000_000))));
        events.push((4.2, Some("b"), "Downloading", Some((500, 1000))));
        events.push((4.3, Some("a"), "Pull complete", None));
        events.push((4.3, Some("b"), "Pull complete", None));
        let lines = check(&events, 4.5);
        assert_eq!(
            lines,
            [
                "pulling reg:5000/app:1: 0 of 2 layers done, 10.0 MB of 30.0 MB downloaded (33%)",
                "pulling reg:5000/app:1: 0 of 2 layers done, 20.0 MB of 30.0 MB downloaded (66%)",
                "pulling reg:5000/app:1: 0 of 2 layers done, 30.0 MB of 30.0 MB downloaded (100%)",
                "pulling reg:5000/app:1: 0 of 2 layers done, 30.0 MB of 30.0 MB downloaded \
                 (99%), extracting 1 layer",
                "pulled reg:5000/app:1 in 4.5 s: 30.0 MB downloaded in 2 layers",
            ]
        );
    }

    #[test]
    fn a_forced_pull_of_a_current_image_says_so() {
        let lines = check(
            &[
                (0.0, Some("1"), "Pulling from app", None),
                (0.0, None, "Digest: sha256:0123456789abcdef0123", None),
                (
                    0.0,
                    None,
                    "Status: Image is up to date for reg:5000/app:1",
                    None,
                ),
            ],
            0.2,
        );
        assert_eq!(
            lines,
            ["reg:5000/app:1 is up to date (0.2 s, sha256:0123456789ab)"]
        );
    }

    #[test]
    fn sizes_read_like_dockers() {
        for (bytes, text) in [
            (0, "0 B"),
            (999, "999 B"),
            (69_213, "69.2 kB"),
            (4_001_424, "4.0 MB"),
            (1_500_000_000, "1.5 GB"),
        ] {
            assert_eq!(size(bytes), text);
        }
    }
}
