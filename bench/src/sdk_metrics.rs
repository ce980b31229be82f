//! The worker's SDK metrics, read from its `/metrics`: how long workflow tasks waited in
//! the server for a poll (`temporal_workflow_task_schedule_to_start_latency`, in ms), as
//! the difference over one section. A long wait there is the server's matching or too few
//! polls, not workflow code.

/// Cumulative counts per upper bound (ms), summed over task queues.
#[derive(Default, Clone)]
pub struct WaitHistogram(Vec<(f64, f64)>);

const METRIC: &str = "temporal_workflow_task_schedule_to_start_latency_bucket{";

impl WaitHistogram {
    pub async fn scrape(http: &reqwest::Client, addr: &str) -> WaitHistogram {
        let text = match http.get(format!("http://{addr}/metrics")).send().await {
            Ok(r) => r.text().await.unwrap_or_default(),
            Err(_) => String::new(),
        };
        WaitHistogram::parse(&text)
    }

    fn parse(text: &str) -> WaitHistogram {
        let mut h = WaitHistogram::default();
        for line in text.lines().filter(|l| l.starts_with(METRIC)) {
            let le = line.split("le=\"").nth(1).and_then(|r| r.split('"').next());
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok());
            let (Some(le), Some(value)) = (le, value) else { continue };
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().unwrap_or(f64::NAN) };
            match h.0.iter_mut().find(|(b, _)| *b == le) {
                Some((_, n)) => *n += value,
                None => h.0.push((le, value)),
            }
        }
        h.0.sort_by(|a, b| a.0.total_cmp(&b.0));
        h
    }

    /// This histogram minus an earlier one.
    pub fn since(&self, before: &WaitHistogram) -> WaitHistogram {
        let at = |le: f64| before.0.iter().find(|(b, _)| *b == le).map_or(0.0, |(_, n)| *n);
        WaitHistogram(self.0.iter().map(|(le, n)| (*le, n - at(*le))).collect())
    }

    /// "n=983: <=100 ms 23%, <=500 ms 69%, ..." (empty when the worker exported nothing).
    pub fn line(&self) -> String {
        let total = self.0.last().map_or(0.0, |(_, n)| *n);
        if total == 0.0 {
            return String::new();
        }
        let parts: Vec<String> = self
            .0
            .iter()
            .filter(|(le, _)| le.is_finite())
            .map(|(le, n)| format!("<={} {:.0}%", crate::stats::ms(*le), 100.0 * n / total))
            .collect();
        format!("n={total:.0}: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_sums_and_subtracts() {
        let text = "# HELP x\n\
            temporal_workflow_task_schedule_to_start_latency_bucket{task_queue=\"a\",le=\"100\"} 3\n\
            temporal_workflow_task_schedule_to_start_latency_bucket{task_queue=\"a\",le=\"+Inf\"} 4\n\
            temporal_workflow_task_schedule_to_start_latency_bucket{task_queue=\"b\",le=\"100\"} 1\n\
            temporal_workflow_task_schedule_to_start_latency_bucket{task_queue=\"b\",le=\"+Inf\"} 4\n\
            temporal_activity_schedule_to_start_latency_bucket{le=\"100\"} 99\n";
        let after = WaitHistogram::parse(text);
        assert_eq!(after.0, vec![(100.0, 4.0), (f64::INFINITY, 8.0)]);
        let before = WaitHistogram(vec![(100.0, 2.0), (f64::INFINITY, 4.0)]);
        assert_eq!(after.since(&before).line(), "n=4: <=100.0 ms 50%");
        assert_eq!(WaitHistogram::default().line(), "");
    }
}
