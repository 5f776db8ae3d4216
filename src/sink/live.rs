//! The proxy's live view on a terminal: what it holds (one row per
//! handshake or failed connection, counters, the selection and the filter),
//! how keys change it, and how it is drawn with ratatui. No terminal I/O
//! here: `cmd::live` runs the loop, and tests draw into ratatui's TestBackend.

use std::collections::VecDeque;

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Paragraph, Row, Table, TableState, Wrap};

use crate::core::analysis::engine::HandshakeReport;
use crate::core::analysis::{Effect, Outcome, Profile};
use crate::sink::printable;

/// Rows kept at most; the oldest go first (the events file keeps them all).
pub const MAX_ROWS: usize = 5000;

/// What a row stands for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RowKind {
    /// A judged handshake: per-profile outcomes (None: n/a for this service).
    Judged([Option<Outcome>; 4]),
    /// No upstream answered; the reason.
    UpstreamFailed(String),
    /// Bytes passed but no TLS handshake; how it ended.
    NoHandshake(String),
}

/// One finding, as the detail pane shows it.
#[derive(Debug, Clone)]
pub struct FindingLine {
    /// "fail", "prompt", "warn" or "info".
    pub severity: Effect,
    /// The rule ID.
    pub rule: &'static str,
    /// What is wrong.
    pub message: String,
    /// What to change.
    pub fix: String,
}

/// One row of the table.
#[derive(Debug, Clone)]
pub struct LiveRow {
    /// Wall-clock time it was added, HH:MM:SS.
    pub time: String,
    /// The connection number (as in the events file).
    pub id: usize,
    /// Where it was seen (client and upstream).
    pub endpoint: String,
    /// The name checked (SNI or the upstream's name).
    pub name: String,
    /// http, xmpp or sip.
    pub service: String,
    /// TLS version, when seen.
    pub tls: String,
    /// Leaf subject and issuer, short.
    pub leaf: String,
    /// What it is.
    pub kind: RowKind,
    /// Why the handshake failed, when it did.
    pub failure: Option<String>,
    /// Its findings, worst first.
    pub findings: Vec<FindingLine>,
}

impl LiveRow {
    /// The worst outcome over the profiles it applies to; a failed connection counts as fail.
    pub fn worst(&self) -> Outcome {
        match &self.kind {
            RowKind::Judged(o) => o.iter().flatten().copied().max().unwrap_or(Outcome::Ok),
            RowKind::UpstreamFailed(_) | RowKind::NoHandshake(_) => Outcome::Fail,
        }
    }

    /// A row for a judged handshake.
    pub fn judged(id: usize, h: &HandshakeReport, time: String) -> LiveRow {
        let o = &h.observation;
        let mut outcomes = [None; 4];
        for (slot, p) in outcomes.iter_mut().zip(Profile::ALL) {
            *slot = h
                .verdicts
                .get(&p)
                .filter(|v| v.applicable)
                .map(|v| v.outcome);
        }
        let mut findings: Vec<FindingLine> = h
            .findings
            .iter()
            .map(|f| FindingLine {
                severity: f.severity(),
                rule: f.rule.id,
                message: printable(&f.message).into_owned(),
                fix: printable(&f.fix).into_owned(),
            })
            .collect();
        findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
        let leaf = h
            .chain
            .first()
            .map(|c| format!("{} (issuer {})", c.cert.short_name(), c.cert.issuer))
            .unwrap_or_else(|| "no certificate seen".to_owned());
        LiveRow {
            time,
            id,
            // "connection 4: A -> B (host)": the number has its own column.
            endpoint: printable(
                o.origin
                    .locator
                    .split_once(": ")
                    .filter(|(head, _)| head.starts_with("connection "))
                    .map_or(o.origin.locator.as_str(), |(_, rest)| rest),
            )
            .into_owned(),
            name: printable(&o.reference_identity.to_string()).into_owned(),
            service: o.service.as_str().to_owned(),
            tls: o
                .tls
                .version
                .map(|v| v.to_string())
                .unwrap_or_else(|| "-".into()),
            leaf: printable(&leaf).into_owned(),
            kind: RowKind::Judged(outcomes),
            failure: o
                .tls
                .failure
                .as_ref()
                .map(|f| printable(&f.reason).into_owned()),
            findings,
        }
    }

    /// A row for a connection that got no handshake judged.
    pub fn failed(id: usize, client: &str, upstream: &str, kind: RowKind, time: String) -> LiveRow {
        LiveRow {
            time,
            id,
            endpoint: printable(&format!("{client} -> {upstream}")).into_owned(),
            name: "-".into(),
            service: "-".into(),
            tls: "-".into(),
            leaf: String::new(),
            kind,
            failure: None,
            findings: Vec::new(),
        }
    }
}

/// Which rows the table shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// Every row.
    All,
    /// Rows whose worst outcome is warn or worse (unknown included).
    WarnOrWorse,
    /// Prompt or fail.
    PromptOrWorse,
    /// Fail only (failed connections included).
    Fail,
}

impl Filter {
    /// The next filter in the cycle the `f` key walks.
    pub fn next(self) -> Filter {
        match self {
            Filter::All => Filter::WarnOrWorse,
            Filter::WarnOrWorse => Filter::PromptOrWorse,
            Filter::PromptOrWorse => Filter::Fail,
            Filter::Fail => Filter::All,
        }
    }

    fn keeps(self, row: &LiveRow) -> bool {
        let w = row.worst();
        match self {
            Filter::All => true,
            Filter::WarnOrWorse => w >= Outcome::Warn,
            Filter::PromptOrWorse => w >= Outcome::Prompt,
            Filter::Fail => w == Outcome::Fail,
        }
    }

    /// How the status line names it.
    pub fn label(self) -> &'static str {
        match self {
            Filter::All => "all",
            Filter::WarnOrWorse => "warn or worse",
            Filter::PromptOrWorse => "prompt or worse",
            Filter::Fail => "fail",
        }
    }
}

/// What a key asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Nothing more to do than redraw.
    Redraw,
    /// Stop the proxy (as Ctrl-C does).
    Quit,
    /// Clear the screen and draw everything again (after stray output).
    Repaint,
}

/// Counters the view shows in its status line.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counters {
    /// Connections open now.
    pub open: usize,
    /// Connections accepted since the start.
    pub total: usize,
    /// Handshakes judged.
    pub handshakes: u64,
}

/// The whole state of the live view.
#[derive(Debug)]
pub struct LiveView {
    rows: VecDeque<LiveRow>,
    /// The selected row's connection number (stays on it as rows arrive).
    selected: Option<usize>,
    filter: Filter,
    /// Bytes client to server and back, of closed connections.
    bytes: (u64, u64),
    /// Rows that no longer fit.
    pub dropped: u64,
    /// What the proxy listens on and how, for the title.
    title: String,
    /// Where the selection follows new rows (until the user moves it).
    follow: bool,
}

impl LiveView {
    /// An empty view titled `title` (mode and listeners).
    pub fn new(title: String) -> LiveView {
        LiveView {
            rows: VecDeque::new(),
            selected: None,
            filter: Filter::All,
            bytes: (0, 0),
            dropped: 0,
            title,
            follow: true,
        }
    }

    /// Add a row (the oldest goes beyond [`MAX_ROWS`]).
    pub fn push(&mut self, row: LiveRow) {
        if self.rows.len() >= MAX_ROWS {
            self.rows.pop_front();
            self.dropped += 1;
        }
        if self.follow && self.filter.keeps(&row) {
            self.selected = Some(row.id);
        }
        self.rows.push_back(row);
    }

    /// Count a closed connection's bytes.
    pub fn closed(&mut self, up: u64, down: u64) {
        self.bytes.0 += up;
        self.bytes.1 += down;
    }

    /// The rows the filter keeps, oldest first.
    pub fn visible(&self) -> Vec<&LiveRow> {
        self.rows.iter().filter(|r| self.filter.keeps(r)).collect()
    }

    /// The current filter.
    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// The selected row, if the filter shows it.
    pub fn selected(&self) -> Option<&LiveRow> {
        let id = self.selected?;
        self.visible().into_iter().find(|r| r.id == id)
    }

    fn select_index(&mut self, index: usize) {
        let visible = self.visible();
        self.selected = visible
            .get(index.min(visible.len().saturating_sub(1)))
            .map(|r| r.id);
    }

    fn selected_index(&self) -> Option<usize> {
        let id = self.selected?;
        self.visible().iter().position(|r| r.id == id)
    }

    /// Apply a key: arrows, j/k, PgUp/PgDn, Home/End move; f cycles the
    /// filter; q, Esc and Ctrl-C quit; Ctrl-L repaints.
    pub fn key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Action {
        use ratatui::crossterm::event::{KeyCode, KeyModifiers};
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let n = self.visible().len();
        let at = self.selected_index();
        match key.code {
            KeyCode::Char('c') if ctrl => return Action::Quit,
            KeyCode::Char('l') if ctrl => return Action::Repaint,
            KeyCode::Char('q') | KeyCode::Esc => return Action::Quit,
            KeyCode::Char('f') => {
                self.filter = self.filter.next();
                if self.selected_index().is_none() {
                    self.select_index(n);
                }
                self.follow = true;
            }
            KeyCode::Down | KeyCode::Char('j') => {
                let i = at.map_or(0, |i| i + 1);
                self.follow = i + 1 >= n;
                self.select_index(i);
            }
            KeyCode::Up | KeyCode::Char('k') => {
                self.follow = false;
                self.select_index(at.map_or(0, |i| i.saturating_sub(1)));
            }
            KeyCode::PageDown => {
                let i = at.map_or(0, |i| i + 10);
                self.follow = i + 1 >= n;
                self.select_index(i);
            }
            KeyCode::PageUp => {
                self.follow = false;
                self.select_index(at.map_or(0, |i| i.saturating_sub(10)));
            }
            KeyCode::Home | KeyCode::Char('g') => {
                self.follow = false;
                self.select_index(0);
            }
            KeyCode::End | KeyCode::Char('G') => {
                self.follow = true;
                self.select_index(n);
            }
            _ => {}
        }
        Action::Redraw
    }

    /// Draw the view into `frame`.
    pub fn draw(&self, frame: &mut Frame<'_>, counters: Counters) {
        let narrow = frame.area().width < NARROW;
        let [status, table, detail, help] = Layout::vertical([
            Constraint::Length(if narrow { 3 } else { 2 }),
            Constraint::Percentage(55),
            Constraint::Min(6),
            Constraint::Length(1),
        ])
        .areas(frame.area());
        self.draw_status(frame, status, counters);
        self.draw_table(frame, table);
        self.draw_detail(frame, detail);
        frame.render_widget(
            Paragraph::new(Line::from(vec![
                Span::styled("↑/↓", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" select  "),
                Span::styled("f", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" filter  "),
                Span::styled("End", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" follow new  "),
                Span::styled("Ctrl-L", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" repaint  "),
                Span::styled("q", Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(" quit (stops the proxy)"),
            ])),
            help,
        );
    }

    fn draw_status(&self, frame: &mut Frame<'_>, area: Rect, c: Counters) {
        let worst = |o: Outcome| self.rows.iter().filter(|r| r.worst() == o).count();
        let mut spans = vec![
            Span::styled("edgetap proxy ", Style::new().add_modifier(Modifier::BOLD)),
            Span::raw(self.title.clone()),
        ];
        let counters = format!(
            "connections open {} / total {}  |  handshakes {}  |  bytes up {} down {}",
            c.open,
            c.total,
            c.handshakes,
            human_bytes(self.bytes.0),
            human_bytes(self.bytes.1)
        );
        let mut second = vec![Span::raw("rows: ")];
        for o in [
            Outcome::Fail,
            Outcome::Prompt,
            Outcome::Unknown,
            Outcome::Warn,
            Outcome::Ok,
        ] {
            second.push(Span::styled(
                format!("{} {}", worst(o), o.as_str()),
                outcome_style(o),
            ));
            second.push(Span::raw("  "));
        }
        second.push(Span::raw(format!("|  filter: {}", self.filter.label())));
        if self.dropped > 0 {
            second.push(Span::raw(format!(
                "  |  {} oldest rows dropped (all are in --events)",
                self.dropped
            )));
        }
        // A narrow terminal gets the counters on a line of their own.
        let lines = if area.width < NARROW {
            vec![Line::from(spans), Line::from(counters), Line::from(second)]
        } else {
            spans.push(Span::raw(format!("  |  {counters}")));
            vec![Line::from(spans), Line::from(second)]
        };
        frame.render_widget(Paragraph::new(lines), area);
    }

    fn draw_table(&self, frame: &mut Frame<'_>, area: Rect) {
        let visible = self.visible();
        // Narrow (80 columns): the verdicts compact, the TLS version and the
        // client side of the endpoint left out, so names keep the room.
        let narrow = area.width < NARROW;
        let first: &[&str] = if narrow {
            &["time", "#", "server", "name", "svc"]
        } else {
            &["time", "#", "endpoint", "name", "svc", "tls"]
        };
        let profiles = Profile::ALL.map(|p| if narrow { short_name(p) } else { p.as_str() });
        let header = Row::new(
            first
                .iter()
                .chain(profiles.iter())
                .map(|h| Cell::from(*h).style(Style::new().add_modifier(Modifier::BOLD))),
        );
        let rows =
            visible.iter().map(|r| {
                let endpoint = match r.endpoint.split_once("-> ") {
                    Some((_, server)) if narrow => server.to_owned(),
                    _ => r.endpoint.clone(),
                };
                let mut cells = vec![
                    Cell::from(r.time.clone()),
                    Cell::from(r.id.to_string()),
                    Cell::from(endpoint),
                    Cell::from(r.name.clone()),
                    Cell::from(r.service.clone()),
                ];
                if !narrow {
                    cells.push(Cell::from(r.tls.clone()));
                }
                match &r.kind {
                    RowKind::Judged(outcomes) => {
                        for o in outcomes {
                            cells.push(match o {
                                Some(o) => Cell::from(if narrow { short(*o) } else { o.as_str() })
                                    .style(outcome_style(*o)),
                                None => Cell::from("n/a").style(Style::new().fg(Color::DarkGray)),
                            });
                        }
                    }
                    RowKind::UpstreamFailed(_) => cells
                        .push(Cell::from("upstream failed").style(outcome_style(Outcome::Fail))),
                    RowKind::NoHandshake(_) => cells
                        .push(Cell::from("no TLS handshake").style(outcome_style(Outcome::Warn))),
                }
                Row::new(cells)
            });
        let widths: Vec<Constraint> = if narrow {
            vec![
                Constraint::Length(8),
                Constraint::Length(4),
                Constraint::Fill(1),
                Constraint::Fill(1),
                Constraint::Length(4),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(5),
                Constraint::Length(5),
            ]
        } else {
            vec![
                Constraint::Length(8),
                Constraint::Length(5),
                Constraint::Fill(2),
                Constraint::Fill(1),
                Constraint::Length(4),
                Constraint::Length(7),
                Constraint::Length(7),
                Constraint::Length(8),
                Constraint::Length(11),
                Constraint::Length(12),
            ]
        };
        let table = Table::new(rows, widths)
            .header(header)
            .row_highlight_style(Style::new().add_modifier(Modifier::REVERSED))
            .highlight_symbol("> ")
            .block(
                Block::new()
                    .borders(Borders::TOP)
                    .title(format!(" handshakes ({} shown) ", visible.len())),
            );
        let mut state = TableState::default().with_selected(self.selected_index());
        frame.render_stateful_widget(table, area, &mut state);
    }

    fn draw_detail(&self, frame: &mut Frame<'_>, area: Rect) {
        let block = Block::new().borders(Borders::TOP).title(" selected ");
        let Some(r) = self.selected() else {
            frame.render_widget(
                Paragraph::new("No row selected: connections appear above as they pass.")
                    .block(block),
                area,
            );
            return;
        };
        let mut lines = vec![Line::from(vec![
            Span::styled(
                format!("#{} {} ", r.id, r.name),
                Style::new().add_modifier(Modifier::BOLD),
            ),
            Span::raw(format!("{}  {}", r.endpoint, r.leaf)),
        ])];
        match &r.kind {
            RowKind::UpstreamFailed(why) => lines.push(Line::from(Span::styled(
                format!("upstream failed: {why}"),
                outcome_style(Outcome::Fail),
            ))),
            RowKind::NoHandshake(why) => lines.push(Line::from(Span::styled(
                format!("no TLS handshake seen: {why}"),
                outcome_style(Outcome::Warn),
            ))),
            RowKind::Judged(_) => {}
        }
        if let Some(f) = &r.failure {
            lines.push(Line::from(Span::styled(
                format!("handshake failed: {f}"),
                outcome_style(Outcome::Fail),
            )));
        }
        if matches!(r.kind, RowKind::Judged(_)) && r.findings.is_empty() {
            lines.push(Line::from("no findings"));
        }
        for f in &r.findings {
            let sev = match f.severity {
                Effect::NotApplicable | Effect::Ok => "info",
                e => e.as_str(),
            };
            lines.push(Line::from(vec![
                Span::styled(format!("{sev:>6} "), effect_style(f.severity)),
                Span::styled(f.rule, Style::new().add_modifier(Modifier::BOLD)),
                Span::raw(format!(": {}", f.message)),
            ]));
            lines.push(Line::from(vec![
                Span::styled("       fix: ", Style::new().fg(Color::Green)),
                Span::raw(f.fix.clone()),
            ]));
        }
        frame.render_widget(
            Paragraph::new(lines)
                .wrap(Wrap { trim: false })
                .block(block),
            area,
        );
    }
}

/// Below this many columns the view lays out for a small terminal (80x24).
const NARROW: u16 = 110;

/// A profile's name in at most five letters, for narrow verdict columns.
fn short_name(p: Profile) -> &'static str {
    match p {
        Profile::Jabber => "jab",
        Profile::IpPhone => "phone",
        Profile::TcEndpoint => "tc",
        Profile::ExpresswayC => "exp-c",
    }
}

/// An outcome in at most five letters, for narrow verdict columns.
fn short(o: Outcome) -> &'static str {
    match o {
        Outcome::Ok => "ok",
        Outcome::Warn => "warn",
        Outcome::Unknown => "unkn",
        Outcome::Prompt => "prmpt",
        Outcome::Fail => "fail",
    }
}

fn outcome_style(o: Outcome) -> Style {
    let colour = match o {
        Outcome::Ok => Color::Green,
        Outcome::Warn => Color::Yellow,
        Outcome::Unknown => Color::Cyan,
        Outcome::Prompt => Color::Magenta,
        Outcome::Fail => Color::Red,
    };
    Style::new().fg(colour).add_modifier(Modifier::BOLD)
}

fn effect_style(e: Effect) -> Style {
    match e {
        Effect::Fail => outcome_style(Outcome::Fail),
        Effect::Prompt => outcome_style(Outcome::Prompt),
        Effect::Warn => outcome_style(Outcome::Warn),
        _ => Style::new().fg(Color::DarkGray),
    }
}

/// 1536 -> "1.5 KiB".
fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{v:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

    fn row(id: usize, outcomes: [Option<Outcome>; 4]) -> LiveRow {
        LiveRow {
            time: "12:00:00".into(),
            id,
            endpoint: format!("127.0.0.1:{id} -> 127.0.0.1:8443"),
            name: "expe.example.com".into(),
            service: "http".into(),
            tls: "TLSv1.3".into(),
            leaf: "expe.example.com".into(),
            kind: RowKind::Judged(outcomes),
            failure: None,
            findings: vec![FindingLine {
                severity: Effect::Fail,
                rule: "chain.missing-intermediate",
                message: "the chain stops".into(),
                fix: "send the intermediate".into(),
            }],
        }
    }

    fn press(v: &mut LiveView, code: KeyCode) -> Action {
        v.key(KeyEvent::new(code, KeyModifiers::NONE))
    }

    #[test]
    fn filter_selection_and_keys() {
        let ok = Some(Outcome::Ok);
        let fail = Some(Outcome::Fail);
        let mut v = LiveView::new("test".into());
        v.push(row(1, [ok, ok, ok, ok]));
        v.push(row(2, [ok, fail, fail, ok]));
        v.push(row(3, [Some(Outcome::Warn), ok, None, ok]));
        assert_eq!(v.selected().map(|r| r.id), Some(3), "follows new rows");
        assert_eq!(press(&mut v, KeyCode::Up), Action::Redraw);
        assert_eq!(v.selected().map(|r| r.id), Some(2));
        v.push(row(4, [ok, ok, ok, ok]));
        assert_eq!(v.selected().map(|r| r.id), Some(2), "stays put once moved");
        press(&mut v, KeyCode::Char('f'));
        assert_eq!(v.filter(), Filter::WarnOrWorse);
        assert_eq!(v.visible().iter().map(|r| r.id).collect::<Vec<_>>(), [2, 3]);
        press(&mut v, KeyCode::Char('f'));
        press(&mut v, KeyCode::Char('f'));
        assert_eq!(v.filter(), Filter::Fail);
        assert_eq!(v.visible().iter().map(|r| r.id).collect::<Vec<_>>(), [2]);
        press(&mut v, KeyCode::Char('f'));
        assert_eq!(v.filter(), Filter::All);
        assert_eq!(press(&mut v, KeyCode::Char('q')), Action::Quit);
        assert_eq!(
            v.key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)),
            Action::Quit
        );
    }

    /// At 80x24 the names keep their room (the verdicts are compact and the
    /// client side of the endpoint is left out) and the header is whole.
    #[test]
    fn an_80_by_24_terminal_keeps_the_names() {
        let mut v = LiveView::new("passthrough on 127.0.0.1:8443".into());
        v.push(row(
            7,
            [
                Some(Outcome::Prompt),
                Some(Outcome::Fail),
                Some(Outcome::Unknown),
                None,
            ],
        ));
        v.closed(1536, 10);
        let backend = ratatui::backend::TestBackend::new(80, 24);
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        let counters = Counters {
            open: 2,
            total: 9,
            handshakes: 7,
        };
        terminal.draw(|f| v.draw(f, counters)).unwrap();
        let lines: Vec<String> = terminal
            .backend()
            .buffer()
            .content()
            .chunks(80)
            .map(|line| line.iter().map(|c| c.symbol()).collect())
            .collect();
        let screen = lines.join("\n");
        assert!(
            lines[0].contains("edgetap proxy passthrough on 127.0.0.1:8443"),
            "{screen}"
        );
        assert!(
            lines[1].contains("connections open 2 / total 9"),
            "{screen}"
        );
        assert!(lines[1].contains("bytes up 1.5 KiB down 10 B"), "{screen}");
        for whole in [
            "127.0.0.1:8443",
            "expe.example.com",
            "prmpt",
            "fail",
            "unkn",
            "exp-c",
        ] {
            assert!(
                screen.contains(whole),
                "{whole:?} not drawn whole:\n{screen}"
            );
        }
    }

    #[test]
    fn rows_are_bounded() {
        let mut v = LiveView::new("test".into());
        for id in 0..MAX_ROWS + 10 {
            v.push(row(id, [None; 4]));
        }
        assert_eq!(v.visible().len(), MAX_ROWS);
        assert_eq!(v.dropped, 10);
    }

    #[test]
    fn draws_rows_outcomes_and_the_selected_findings() {
        let mut v = LiveView::new("passthrough 127.0.0.1:8443".into());
        v.push(row(
            7,
            [
                Some(Outcome::Prompt),
                Some(Outcome::Fail),
                Some(Outcome::Fail),
                None,
            ],
        ));
        v.closed(1536, 10);
        let backend = ratatui::backend::TestBackend::new(140, 30);
        let mut terminal = ratatui::Terminal::new(backend).unwrap();
        terminal
            .draw(|f| {
                v.draw(
                    f,
                    Counters {
                        open: 2,
                        total: 9,
                        handshakes: 7,
                    },
                )
            })
            .unwrap();
        let text: String = terminal
            .backend()
            .buffer()
            .content()
            .iter()
            .map(|c| c.symbol())
            .collect();
        for want in [
            "open 2 / total 9",
            "bytes up 1.5 KiB down 10 B",
            "expe.example.com",
            "prompt",
            "fail",
            "n/a",
            "chain.missing-intermediate",
            "fix: send the intermediate",
        ] {
            assert!(text.contains(want), "{want:?} not drawn");
        }
    }
}
