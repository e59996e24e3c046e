//! One `jobs.<id>` entry → [`Job`]: runner selection, strategy and matrix, containers and
//! services, environment, outputs, and the reusable-workflow form (`uses`/`with`/`secrets`).
//!
//! Owns: job-level keys and their shapes. Steps are converted by the `step` module.

use indexmap::IndexMap;
use runnel_expr::Template;
use runnel_yaml::{Node, NodeKind, ScalarValue};

use super::workflow::{concurrency, defaults, permissions};
use super::{ComputedKey, Converter, LiteralKeys, Place, step};
use crate::model::{
    Container, Credentials, Environment, Job, LiteralOrExpr, MapKey, Matrix, MatrixEntry,
    MatrixRow, MatrixRows, ReusableWorkflowCall, RunsOn, Spanned, Strategy, TemplateMap,
    WorkflowSecrets,
};

const JOB_KEYS: &[&str] = &[
    "name",
    "needs",
    "if",
    "runs-on",
    "strategy",
    "container",
    "services",
    "outputs",
    "env",
    "defaults",
    "timeout-minutes",
    "cancel-timeout-minutes",
    "continue-on-error",
    "environment",
    "concurrency",
    "permissions",
    "steps",
    "uses",
    "with",
    "secrets",
    "snapshot",
];

/// Keys a job that calls a reusable workflow may have.
const CALL_JOB_KEYS: &[&str] = &[
    "name",
    "uses",
    "with",
    "secrets",
    "needs",
    "if",
    "permissions",
    "concurrency",
    "strategy",
];

pub(super) fn convert(cx: &mut Converter<'_>, id: Spanned<String>, node: &Node) -> Option<Job> {
    let what = format!("job `{}`", id.value);
    let entries = cx.mapping(node, &id.value)?;
    let mut job = Job {
        id,
        name: None,
        needs: Vec::new(),
        if_condition: None,
        runs_on: None,
        strategy: None,
        container: None,
        services: IndexMap::new(),
        outputs: IndexMap::new(),
        env: TemplateMap::default(),
        defaults: None,
        timeout_minutes: None,
        continue_on_error: None,
        environment: None,
        concurrency: None,
        permissions: None,
        steps: Vec::new(),
        call: None,
        span: node.span,
    };
    let calls_workflow = entries.iter().any(|(key, _, _)| *key == "uses");
    let entries_keys: Vec<&str> = entries.iter().map(|(key, _, _)| *key).collect();
    let mut saw_steps = false;
    let mut call = ReusableWorkflowCall {
        uses: Spanned {
            value: String::new(),
            span: node.span,
        },
        with: IndexMap::new(),
        secrets: None,
    };
    for (key, key_node, value) in entries {
        // Gitea's job parser writes `runs-on: []` into the task payload of a job that calls a
        // reusable workflow: nothing asked for, so nothing to refuse.
        let gitea_empty_runs_on = key == "runs-on"
            && matches!(&value.kind, NodeKind::Sequence(items) if items.is_empty());
        if calls_workflow && gitea_empty_runs_on {
            continue;
        }
        if calls_workflow && JOB_KEYS.contains(&key) && !CALL_JOB_KEYS.contains(&key) {
            cx.error_hint(
                key_node.span,
                format!("`{key}` cannot be used in a job that calls a reusable workflow"),
                "a job with `uses:` runs the called workflow's jobs; remove this key or `uses`"
                    .to_owned(),
            );
            continue;
        }
        if !calls_workflow && matches!(key, "with" | "secrets") {
            cx.error(
                key_node.span,
                format!(
                    "`{key}` is only valid in a job that calls a reusable workflow with `uses`"
                ),
            );
            continue;
        }
        match key {
            "name" => job.name = cx.template(value, key, Place::Job),
            "needs" => job.needs = cx.string_list(value, key).unwrap_or_default(),
            "if" => job.if_condition = cx.if_condition(value, Place::JobIf),
            "runs-on" => job.runs_on = runs_on(cx, value),
            "strategy" => job.strategy = strategy(cx, value),
            "container" => job.container = container(cx, value, "container", false),
            "services" => {
                for (name, _, service) in cx
                    .mapping_with(value, key, ComputedKey::ServiceId)
                    .unwrap_or_default()
                {
                    if let Some(service) = container(cx, service, name, true) {
                        job.services.insert(name.to_owned(), service);
                    }
                }
            }
            "outputs" => job.outputs = cx.string_map(value, key, Place::JobOutputs),
            "env" => {
                job.env = cx.template_map(value, key, Place::JobWithSecrets, Place::JobWithSecrets);
            }
            "defaults" => job.defaults = defaults(cx, value, Some(Place::JobDefaultsRun)),
            "timeout-minutes" => job.timeout_minutes = cx.number_or_expr(value, key, Place::Job),
            "cancel-timeout-minutes" => {
                cx.number_or_expr(value, key, Place::Job);
            }
            "continue-on-error" => {
                job.continue_on_error = cx.bool_or_expr(value, key, Place::Job);
            }
            "environment" => job.environment = environment(cx, value),
            "concurrency" => job.concurrency = concurrency(cx, value, Place::Job),
            "permissions" => job.permissions = permissions(cx, value),
            "steps" => {
                saw_steps = true;
                job.steps = step::steps(cx, value);
            }
            "snapshot" => cx.warning(key_node.span, "`snapshot` is ignored by this runner"),
            "uses" => {
                if let Some(uses) = cx.plain_string(value, key) {
                    check_workflow_ref(cx, &uses);
                    call.uses = uses;
                }
            }
            "with" => call.with = call_with(cx, value),
            "secrets" => call.secrets = call_secrets(cx, value),
            _ => cx.unknown_key(key_node, key, JOB_KEYS, &what),
        }
    }
    if calls_workflow {
        job.call = Some(call);
    } else {
        // A misspelt `runs-on` was already reported with a hint; don't add a second error.
        let misspelt = entries_keys
            .iter()
            .any(|key| *key != "runs-on" && super::suggest::closest(key, &["runs-on"]).is_some());
        if job.runs_on.is_none() && !misspelt {
            cx.error_hint(
                node.span,
                format!("job `{}` is missing `runs-on`", job.id.value),
                "add e.g. `runs-on: ubuntu-latest`, or `uses:` to call a reusable workflow"
                    .to_owned(),
            );
        }
        // GitHub accepts a job without steps (it then does nothing); say so, don't fail.
        if !saw_steps {
            cx.warning(node.span, format!("job `{}` has no `steps`", job.id.value));
        }
    }
    Some(job)
}

fn check_workflow_ref(cx: &mut Converter<'_>, uses: &Spanned<String>) {
    let value = &uses.value;
    let local = value.starts_with("./");
    let remote = value.split_once('@').is_some_and(|(path, git_ref)| {
        !git_ref.is_empty()
            && (path.contains("/.github/workflows/") || path.contains("/.gitea/workflows/"))
    });
    if !local && !remote {
        cx.error_hint(
            uses.span,
            format!("invalid reusable workflow reference `{value}`"),
            "use `owner/repo/.gitea/workflows/file.yml@ref` or `./.gitea/workflows/file.yml` \
             (`.github/workflows` works too)"
                .to_owned(),
        );
    }
}

fn call_with(
    cx: &mut Converter<'_>,
    node: &Node,
) -> IndexMap<String, LiteralOrExpr<runnel_expr::Value>> {
    let mut with = IndexMap::new();
    for (name, _, value) in cx.mapping(node, "with").unwrap_or_default() {
        let Some(scalar) = value.as_scalar() else {
            cx.wrong_type(value, name, "a string, a boolean or a number");
            continue;
        };
        let input = if scalar.value == ScalarValue::String && scalar.text.contains("${{") {
            LiteralOrExpr::Expr(cx.template_from(value, scalar.text.clone(), Place::Job))
        } else {
            LiteralOrExpr::Literal(Spanned {
                value: Converter::value(value),
                span: value.span,
            })
        };
        with.insert(name.to_owned(), input);
    }
    with
}

fn call_secrets(cx: &mut Converter<'_>, node: &Node) -> Option<WorkflowSecrets> {
    if let Some(text) = node.scalar_text() {
        if text == "inherit" {
            return Some(WorkflowSecrets::Inherit(node.span));
        }
        cx.error_hint(
            node.span,
            format!("invalid `secrets` value `{text}`"),
            "use `inherit` or a mapping of secret names to values".to_owned(),
        );
        return None;
    }
    let mut secrets = IndexMap::new();
    for (name, _, value) in cx.mapping(node, "secrets")? {
        if let Some(template) = cx.template(value, name, Place::JobWithSecrets) {
            secrets.insert(name.to_owned(), template);
        }
    }
    Some(WorkflowSecrets::Map(secrets, node.span))
}

fn runs_on(cx: &mut Converter<'_>, node: &Node) -> Option<RunsOn> {
    match &node.kind {
        NodeKind::Scalar(_) => {
            let label = cx.non_empty_template(node, "runs-on", Place::Job)?;
            if matches!(label.template, Template::Whole(_)) {
                Some(RunsOn::Expr(label))
            } else {
                Some(RunsOn::Labels(vec![label], node.span))
            }
        }
        NodeKind::Sequence(items) => {
            let labels = items
                .iter()
                .filter_map(|item| cx.non_empty_template(item, "runs-on", Place::Job))
                .collect();
            Some(RunsOn::Labels(labels, node.span))
        }
        NodeKind::Mapping(_) => {
            let mut group = None;
            let mut labels = Vec::new();
            for (key, key_node, value) in cx.mapping(node, "runs-on")? {
                match key {
                    "group" => group = cx.non_empty_template(value, key, Place::Job),
                    "labels" => {
                        let items: Vec<&Node> = match &value.kind {
                            NodeKind::Sequence(items) => items.iter().collect(),
                            _ => vec![value],
                        };
                        labels = items
                            .into_iter()
                            .filter_map(|item| cx.non_empty_template(item, key, Place::Job))
                            .collect();
                    }
                    _ => cx.unknown_key(key_node, key, &["group", "labels"], "`runs-on`"),
                }
            }
            Some(RunsOn::Group {
                group,
                labels,
                span: node.span,
            })
        }
    }
}

fn strategy(cx: &mut Converter<'_>, node: &Node) -> Option<Strategy> {
    let place = Place::JobStrategy;
    let mut strategy = Strategy {
        matrix: None,
        fail_fast: None,
        max_parallel: None,
        span: node.span,
    };
    for (key, key_node, value) in
        cx.mapping_with(node, "strategy", ComputedKey::NotYet(Place::JobStrategy))?
    {
        match key {
            "matrix" => strategy.matrix = matrix(cx, value),
            "fail-fast" => strategy.fail_fast = cx.bool_or_expr(value, key, place),
            "max-parallel" => strategy.max_parallel = cx.number_or_expr(value, key, place),
            _ => cx.unknown_key(
                key_node,
                key,
                &["matrix", "fail-fast", "max-parallel"],
                "`strategy`",
            ),
        }
    }
    Some(strategy)
}

/// A string holding `${{ }}`, parsed as an expression that yields a whole value.
fn whole_expression(
    cx: &mut Converter<'_>,
    node: &Node,
    place: Place,
) -> Option<super::TemplateString> {
    let scalar = node.as_scalar()?;
    if scalar.value != ScalarValue::String || !scalar.text.contains("${{") {
        return None;
    }
    Some(cx.template_from(node, scalar.text.clone(), place))
}

fn matrix(cx: &mut Converter<'_>, node: &Node) -> Option<Matrix> {
    let place = Place::JobStrategy;
    if let Some(expr) = whole_expression(cx, node, place) {
        return Some(Matrix::Expr(expr));
    }
    let mut dimensions = Vec::new();
    let mut include = None;
    let mut exclude = None;
    let mut keys = LiteralKeys::default();
    for (key, value) in matrix_entries(cx, node, "matrix", &mut keys)? {
        match key.literal() {
            Some("include") => include = matrix_rows(cx, value, "include"),
            Some("exclude") => exclude = matrix_rows(cx, value, "exclude"),
            _ => {
                let shape_ok = match (&key, &value.kind) {
                    _ if holds_expression(value) => true,
                    (MapKey::Name(name), NodeKind::Sequence(items)) => {
                        if items.is_empty() {
                            cx.error(
                                value.span,
                                format!("matrix vector `{}` has no values", name.raw),
                            );
                        }
                        true
                    }
                    (MapKey::Name(name), _) => {
                        cx.wrong_type(value, &name.raw, "a list of values or an expression");
                        false
                    }
                    (MapKey::Insert(_), NodeKind::Mapping(_)) => true,
                    (MapKey::Insert(_), _) => {
                        cx.wrong_type(value, key.raw(), "a mapping or an expression");
                        false
                    }
                };
                if shape_ok {
                    check_matrix_value(cx, value);
                    dimensions.push(MatrixEntry {
                        key,
                        value: Spanned {
                            value: Converter::value(value),
                            span: value.span,
                        },
                    });
                }
            }
        }
    }
    Some(Matrix::Map {
        dimensions,
        include,
        exclude,
        span: node.span,
    })
}

/// A string with `${{ }}` (its expressions are checked by [`check_matrix_value`]).
fn holds_expression(node: &Node) -> bool {
    node.as_scalar()
        .is_some_and(|s| s.value == ScalarValue::String && s.text.contains("${{"))
}

/// The keys and value nodes of a matrix mapping (`strategy.matrix` or a row of
/// `include`/`exclude`), keys possibly computed, literal duplicates reported.
fn matrix_entries<'n>(
    cx: &mut Converter<'_>,
    node: &'n Node,
    what: &str,
    keys: &mut LiteralKeys,
) -> Option<Vec<(MapKey, &'n Node)>> {
    let NodeKind::Mapping(entries) = &node.kind else {
        cx.wrong_type(node, what, "a mapping");
        return None;
    };
    let mut out = Vec::with_capacity(entries.len());
    for (key_node, value) in entries {
        if let Some(key) = cx.map_key(key_node, Place::JobStrategy)
            && keys.is_new(cx, &key)
        {
            out.push((key, value));
        }
    }
    Some(out)
}

fn matrix_rows(cx: &mut Converter<'_>, node: &Node, key: &str) -> Option<MatrixRows> {
    if let Some(expr) = whole_expression(cx, node, Place::JobStrategy) {
        return Some(LiteralOrExpr::Expr(expr));
    }
    let NodeKind::Sequence(items) = &node.kind else {
        cx.wrong_type(node, key, "a list of mappings or an expression");
        return None;
    };
    let mut rows: Vec<MatrixRow> = Vec::new();
    for item in items {
        let mut row = Vec::new();
        let mut keys = LiteralKeys::default();
        for (name, value) in matrix_entries(cx, item, key, &mut keys).unwrap_or_default() {
            if matches!(name, MapKey::Insert(_))
                && !matches!(value.kind, NodeKind::Mapping(_))
                && !holds_expression(value)
            {
                cx.wrong_type(value, name.raw(), "a mapping or an expression");
                continue;
            }
            check_matrix_value(cx, value);
            row.push(MatrixEntry {
                key: name,
                value: Spanned {
                    value: Converter::value(value),
                    span: value.span,
                },
            });
        }
        rows.push(Spanned {
            value: row,
            span: item.span,
        });
    }
    Some(LiteralOrExpr::Literal(Spanned {
        value: rows,
        span: node.span,
    }))
}

/// Expressions inside matrix values are evaluated at plan time; check them now.
fn check_matrix_value(cx: &mut Converter<'_>, node: &Node) {
    match &node.kind {
        NodeKind::Scalar(scalar) => {
            if scalar.value == ScalarValue::String && scalar.text.contains("${{") {
                cx.template_from(node, scalar.text.clone(), Place::JobStrategy);
            }
        }
        NodeKind::Sequence(items) => items.iter().for_each(|item| check_matrix_value(cx, item)),
        NodeKind::Mapping(entries) => entries.iter().for_each(|(_, v)| check_matrix_value(cx, v)),
    }
}

fn container(cx: &mut Converter<'_>, node: &Node, key: &str, service: bool) -> Option<Container> {
    if node.as_scalar().is_some() {
        let image = cx.template(node, key, Place::Job)?;
        if image.raw.is_empty() {
            cx.error(node.span, format!("the image of `{key}` must not be empty"));
        }
        return Some(Container {
            image,
            credentials: None,
            env: TemplateMap::default(),
            ports: Vec::new(),
            volumes: Vec::new(),
            options: None,
            entrypoint: None,
            command: None,
            span: node.span,
        });
    }
    let mut image = None;
    let mut container = Container {
        image: cx.template_from(node, String::new(), Place::Job),
        credentials: None,
        env: TemplateMap::default(),
        ports: Vec::new(),
        volumes: Vec::new(),
        options: None,
        entrypoint: None,
        command: None,
        span: node.span,
    };
    let mut known = vec!["image", "credentials", "env", "ports", "volumes", "options"];
    if service {
        known.extend(["entrypoint", "command"]);
    }
    let what = if service {
        format!("services.{key}")
    } else {
        key.to_owned()
    };
    for (name, key_node, value) in cx.mapping_with(node, &what, ComputedKey::NotYet(Place::Job))? {
        match name {
            "image" => image = cx.non_empty_template(value, name, Place::Job),
            "options" => container.options = cx.template(value, name, Place::Job),
            "env" => {
                container.env = cx.template_map(value, name, Place::Job, Place::ContainerEnv);
            }
            "ports" | "volumes" => {
                let list = match &value.kind {
                    NodeKind::Sequence(items) => items
                        .iter()
                        .filter_map(|item| cx.non_empty_template(item, name, Place::Job))
                        .collect(),
                    _ => {
                        cx.wrong_type(value, name, "a list of strings");
                        Vec::new()
                    }
                };
                if name == "ports" {
                    container.ports = list;
                } else {
                    container.volumes = list;
                }
            }
            "credentials" => container.credentials = credentials(cx, value),
            "entrypoint" if service => container.entrypoint = cx.template(value, name, Place::Job),
            "command" if service => container.command = cx.template(value, name, Place::Job),
            _ => cx.unknown_key(key_node, name, &known, &format!("`{key}`")),
        }
    }
    match image {
        Some(image) => container.image = image,
        None => {
            cx.error(node.span, format!("`{key}` is missing `image`"));
        }
    }
    Some(container)
}

fn credentials(cx: &mut Converter<'_>, node: &Node) -> Option<Credentials> {
    let place = Place::ContainerCredentials;
    let mut credentials = Credentials {
        username: None,
        password: None,
        computed: None,
        span: node.span,
    };
    if super::has_computed_key(node) {
        // GitHub evaluates computed keys here (the mapping has contexts): kept whole.
        let map = cx.template_map(node, "credentials", place, place);
        for entry in &map.entries {
            if let Some(name) = entry.key.literal()
                && !matches!(name, "username" | "password")
            {
                cx.error_hint(
                    entry.key.span(),
                    format!("unknown key `{name}` in `credentials`"),
                    "valid keys are: username, password".to_owned(),
                );
            }
        }
        credentials.computed = Some(map);
        return Some(credentials);
    }
    for (key, key_node, value) in cx.mapping(node, "credentials")? {
        match key {
            "username" => credentials.username = cx.non_empty_template(value, key, place),
            "password" => credentials.password = cx.non_empty_template(value, key, place),
            _ => cx.unknown_key(key_node, key, &["username", "password"], "`credentials`"),
        }
    }
    Some(credentials)
}

fn environment(cx: &mut Converter<'_>, node: &Node) -> Option<Environment> {
    if node.as_scalar().is_some() {
        return Some(Environment {
            name: cx.template(node, "environment", Place::Job)?,
            url: None,
            span: node.span,
        });
    }
    let mut name = None;
    let mut url = None;
    for (key, key_node, value) in cx.mapping(node, "environment")? {
        match key {
            "name" => name = cx.template(value, key, Place::Job),
            "url" => url = cx.template(value, key, Place::EnvironmentUrl),
            "deployment" => {
                cx.boolean(value, key);
            }
            _ => cx.unknown_key(
                key_node,
                key,
                &["name", "url", "deployment"],
                "`environment`",
            ),
        }
    }
    let Some(name) = name else {
        cx.error(node.span, "`environment` is missing `name`");
        return None;
    };
    Some(Environment {
        name,
        url,
        span: node.span,
    })
}
