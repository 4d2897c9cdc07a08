{{/*
The roles this chart knows. A key under .Values.roles that is not one of these
is a typo (e.g. roles.parsr.enabled=false) and fails the render instead of
being silently ignored.
*/}}
{{- define "switchboard.knownRoles" -}}
intake parser sentiment retriever router assign feedback metrics console
{{- end }}

{{/*
The roles that read their input through a durable JetStream consumer named
after the role (services/libs/runtime/src/runner.rs: `durable: self.role`),
so KEDA can scale them on its lag. The console reads no stream; each metrics
replica reads the whole stream on a consumer of its own, so it has no shared
lag and its work does not split.
*/}}
{{- define "switchboard.consumerRoles" -}}
intake parser sentiment retriever router assign feedback
{{- end }}

{{/*
The roles that open the knowledge base (services/switchboard/src/app.rs), so
the only ones given the Qdrant API key.
*/}}
{{- define "switchboard.knowledgeRoles" -}}
retriever feedback
{{- end }}

{{/*
One of the per-role blocks (autoscaling, keda, podDisruptionBudget): the
top-level block with the role's own block of the same name laid over it, key
by key. Written out instead of mergeOverwrite, which does not let a role's
`enabled: false` override a top-level `true` (false is an "empty" value to
it). Call with (dict "root" $ "cfg" $cfg "block" "autoscaling"); returns YAML
for fromYaml.
*/}}
{{- define "switchboard.roleBlock" -}}
{{- $out := deepCopy (index .root.Values .block | default dict) }}
{{- range $k, $v := (index .cfg .block | default dict) }}
{{- $_ := set $out $k $v }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
How one role scales: "keda", "hpa" or "" (fixed replicas). Fails on KEDA for
a role that has no consumer to read the lag of.
Call with (dict "root" $ "role" $role "cfg" $cfg).
*/}}
{{- define "switchboard.scaler" -}}
{{- $hpa := fromYaml (include "switchboard.roleBlock" (dict "root" .root "cfg" .cfg "block" "autoscaling")) }}
{{- $keda := fromYaml (include "switchboard.roleBlock" (dict "root" .root "cfg" .cfg "block" "keda")) }}
{{- if $keda.enabled }}
{{- if not (has .role (splitList " " (include "switchboard.consumerRoles" .root))) }}
{{- fail (printf "roles.%s.keda.enabled: the %s role has no JetStream consumer whose lag KEDA could read; use autoscaling (CPU) instead" .role .role) }}
{{- end }}
{{- print "keda" }}
{{- else if $hpa.enabled }}
{{- print "hpa" }}
{{- end }}
{{- end }}

{{/*
Name of the Secret the chart renders for keys given as values.
*/}}
{{- define "switchboard.secretName" -}}
{{- printf "%s-keys" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Name of the Secret holding who may publish on the bus: the NATS users'
passwords, the server's authorization block for them, the signing key.
*/}}
{{- define "switchboard.busSecretName" -}}
{{- printf "%s-bus" (include "switchboard.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
A secret value: the one given, else the one the installed Secret holds (so an
upgrade keeps it), else a new random one.
Call with (dict "given" <value> "kept" <installed Secret's data> "key" <data key>).
*/}}
{{- define "switchboard.keptSecret" -}}
{{- if .given }}{{ .given }}
{{- else if hasKey .kept .key }}{{ index .kept .key | b64dec }}
{{- else }}{{ randAlphaNum 48 }}
{{- end }}
{{- end }}

{{/*
The NATS server's authorization block for the chart's two users (nats.auth).
Roles: the Switchboard subjects, the JetStream API, acks and flow control, KV;
replies on their own inbox prefix (services/libs/bus/src/nats.rs,
INBOX_PREFIX). Connectors: publish on <prefix>.inbound.> and read their own
replies, nothing else.
Call with (dict "root" $ "password" <roles'> "connectorPassword" <connectors'>).
*/}}
{{- define "switchboard.natsAuthorization" -}}
{{- $auth := .root.Values.nats.auth }}
{{- $prefix := .root.Values.nats.subjectPrefix -}}
# Rendered by the switchboard chart for release {{ .root.Release.Name }}: who may
# publish on its bus. Include this file in the NATS server's configuration.
authorization {
  users = [
    {
      user: {{ $auth.user | quote }}
      password: {{ .password | quote }}
      permissions: {
        publish: { allow: [{{ printf "%s.>" $prefix | quote }}, "$JS.API.>", "$JS.ACK.>", "$JS.FC.>", "$KV.>"] }
        subscribe: { allow: ["_SWITCHBOARD_INBOX.>"] }
      }
    }
    {
      user: {{ $auth.connectorUser | quote }}
      password: {{ .connectorPassword | quote }}
      permissions: {
        publish: { allow: [{{ printf "%s.inbound.>" $prefix | quote }}] }
        subscribe: { allow: ["_INBOX.>"] }
      }
    }
  ]
}
{{- end }}

{{/*
Fail on a key given both as a value and as an existing Secret.
*/}}
{{- define "switchboard.validateKeys" -}}
{{- if and .Values.qdrant.apiKey .Values.qdrant.apiKeySecret.name }}
{{- fail "qdrant: set apiKey or apiKeySecret.name, not both" }}
{{- end }}
{{- if and .Values.llm.apiKey .Values.llm.apiKeySecret.name }}
{{- fail "llm: set apiKey or apiKeySecret.name, not both" }}
{{- end }}
{{- if and .Values.signing.previousKey (not .Values.signing.enabled) }}
{{- fail "signing.previousKey is set but signing.enabled is false" }}
{{- end }}
{{- if and .Values.nats.auth.enabled (eq .Values.nats.auth.user .Values.nats.auth.connectorUser) }}
{{- fail "nats.auth: user and connectorUser must differ: connectors get fewer permissions than the roles" }}
{{- end }}
{{- end }}

{{/*
Expand the name of the chart.
*/}}
{{- define "switchboard.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Create a default fully qualified app name.
Truncated at 63 chars because some Kubernetes name fields are limited to that
(by the DNS naming spec). If the release name contains the chart name it is
used as the full name.
*/}}
{{- define "switchboard.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Name of one role's Deployment and Service: <fullname>-<role>.
Call with (dict "root" $ "role" $role).
*/}}
{{- define "switchboard.roleFullname" -}}
{{- printf "%s-%s" (include "switchboard.fullname" .root | trunc 52 | trimSuffix "-") .role }}
{{- end }}

{{/*
Create chart name and version as used by the chart label.
*/}}
{{- define "switchboard.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Common labels.
*/}}
{{- define "switchboard.labels" -}}
helm.sh/chart: {{ include "switchboard.chart" . }}
{{ include "switchboard.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: switchboard
{{- end }}

{{/*
Selector labels.
*/}}
{{- define "switchboard.selectorLabels" -}}
app.kubernetes.io/name: {{ include "switchboard.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{/*
Labels of one role's objects: the common labels plus the component.
Call with (dict "root" $ "role" $role).
*/}}
{{- define "switchboard.roleLabels" -}}
{{ include "switchboard.labels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{/*
Selector labels of one role's pods: the selector labels plus the component,
so each role's Deployment and Service select only that role's pods.
Call with (dict "root" $ "role" $role).
*/}}
{{- define "switchboard.roleSelectorLabels" -}}
{{ include "switchboard.selectorLabels" .root }}
app.kubernetes.io/component: {{ .role }}
{{- end }}

{{/*
Name of the ServiceAccount to use.
*/}}
{{- define "switchboard.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "switchboard.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/*
The image reference; the tag defaults to the chart's appVersion.
*/}}
{{- define "switchboard.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion | toString) }}
{{- end }}

{{/*
Where the config file is mounted, and its path.
*/}}
{{- define "switchboard.configDir" -}}
/etc/switchboard
{{- end }}
{{- define "switchboard.configPath" -}}
{{ include "switchboard.configDir" . }}/switchboard.toml
{{- end }}

{{/*
Fail on a role key the chart does not know.
*/}}
{{- define "switchboard.validateRoles" -}}
{{- $known := splitList " " (include "switchboard.knownRoles" .) }}
{{- range $role, $_ := .Values.roles }}
{{- if not (has $role $known) }}
{{- fail (printf "roles.%s: unknown role; the roles are: %s" $role (join ", " $known)) }}
{{- end }}
{{- end }}
{{- end }}
