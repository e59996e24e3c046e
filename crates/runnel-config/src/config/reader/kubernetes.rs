//! The `kubernetes:` section: where `name:kubernetes://IMAGE` labels run their pods (cluster,
//! namespace) and what each job pod is given (resources, node selector, tolerations, pull
//! secrets, service account).
//!
//! Must not: talk to a cluster (the backend checks what only the cluster can).

use super::*;

impl Reader<'_> {
    pub(super) fn kubernetes_key(&mut self, path: &str, v: &Node) -> bool {
        let optional = |s: String| (!s.is_empty()).then_some(s);
        match path {
            "kubernetes.kubeconfig" => {
                if let Some(s) = self.string(path, v) {
                    self.config.kubernetes.kubeconfig = optional(s).map(PathBuf::from);
                }
            }
            "kubernetes.context" => {
                if let Some(s) = self.string(path, v) {
                    self.config.kubernetes.context = optional(s);
                }
            }
            "kubernetes.in_cluster" => {
                if let Some(b) = self.boolean(path, v) {
                    self.config.kubernetes.in_cluster = b;
                }
            }
            "kubernetes.namespace" => {
                if let Some(s) = self.string(path, v) {
                    self.config.kubernetes.namespace = optional(s);
                }
            }
            "kubernetes.pull_policy" => {
                if let Some(s) = self.string(path, v) {
                    if matches!(s.as_str(), "" | "Always" | "IfNotPresent" | "Never") {
                        self.config.kubernetes.pull_policy = optional(s);
                    } else {
                        self.error(
                            v.span,
                            format!("{path}: `{s}` is not Always, IfNotPresent or Never"),
                        );
                    }
                }
            }
            "kubernetes.pod_start_timeout" => {
                if let Some(d) = self.duration(path, v) {
                    self.config.kubernetes.pod_start_timeout = (!d.is_zero()).then_some(d);
                }
            }
            "kubernetes.resources" => {
                for (key, value, at) in self.entries(path, v).unwrap_or_default() {
                    let entry_path = format!("{path}.{key}");
                    let Some(map) = self.string_map(&entry_path, value) else {
                        continue;
                    };
                    let map = map.into_iter().filter(|(_, q)| !q.is_empty()).collect();
                    match key.as_str() {
                        "requests" => self.config.kubernetes.resources.requests = map,
                        "limits" => self.config.kubernetes.resources.limits = map,
                        _ => self.unknown(&entry_path, at),
                    }
                }
            }
            "kubernetes.node_selector" => {
                if let Some(map) = self.string_map(path, v) {
                    self.config.kubernetes.node_selector = map;
                }
            }
            "kubernetes.tolerations" => {
                if let Some(tolerations) = self.tolerations(path, v) {
                    self.config.kubernetes.tolerations = tolerations;
                }
            }
            "kubernetes.image_pull_secrets" => {
                if let Some(names) = self.strings(path, v) {
                    self.config.kubernetes.image_pull_secrets =
                        names.into_iter().filter(|n| !n.is_empty()).collect();
                }
            }
            "kubernetes.service_account" => {
                if let Some(s) = self.string(path, v) {
                    self.config.kubernetes.service_account = optional(s);
                }
            }
            "kubernetes.automount_service_account_token" => {
                if let Some(b) = self.boolean(path, v) {
                    self.config.kubernetes.automount_service_account_token = b;
                }
            }
            _ => return false,
        }
        true
    }

    /// `kubernetes.tolerations`: a list of mappings with a pod toleration's keys.
    fn tolerations(&mut self, path: &str, v: &Node) -> Option<Vec<KubernetesToleration>> {
        let items = match &v.kind {
            _ if v.is_null() => return Some(Vec::new()),
            NodeKind::Sequence(items) => items,
            _ => {
                self.error(v.span, format!("{path}: expected a list of tolerations"));
                return None;
            }
        };
        let mut out = Vec::new();
        for (index, item) in items.iter().enumerate() {
            let item_path = format!("{path}[{index}]");
            let mut toleration = KubernetesToleration::default();
            for (key, value, at) in self.entries(&item_path, item).unwrap_or_default() {
                let key_path = format!("{item_path}.{key}");
                match key.as_str() {
                    "key" | "value" | "operator" | "effect" => {
                        let Some(text) = self.string(&key_path, value) else {
                            continue;
                        };
                        let allowed: &[&str] = match key.as_str() {
                            "operator" => &["", "Equal", "Exists"],
                            "effect" => &["", "NoSchedule", "PreferNoSchedule", "NoExecute"],
                            _ => &[],
                        };
                        if !allowed.is_empty() && !allowed.contains(&text.as_str()) {
                            self.error(
                                value.span,
                                format!(
                                    "{key_path}: `{text}` is not one of {}",
                                    allowed[1..].join(", ")
                                ),
                            );
                            continue;
                        }
                        match key.as_str() {
                            "key" => toleration.key = text,
                            "value" => toleration.value = text,
                            "operator" => toleration.operator = text,
                            _ => toleration.effect = text,
                        }
                    }
                    "toleration_seconds" => match value.scalar_text().map(str::parse::<i64>) {
                        Some(Ok(seconds)) => toleration.toleration_seconds = Some(seconds),
                        _ => self.error(
                            value.span,
                            format!("{key_path}: expected a whole number of seconds"),
                        ),
                    },
                    _ => self.unknown(&key_path, at),
                }
            }
            if toleration.operator == "Exists" && !toleration.value.is_empty() {
                self.error(
                    item.span,
                    format!("{item_path}: operator Exists takes no value"),
                );
            }
            out.push(toleration);
        }
        Some(out)
    }
}
