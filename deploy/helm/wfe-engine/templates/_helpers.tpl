{{/* Names and labels shared by every object of the chart. */}}

{{- define "wfe-engine.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "wfe-engine.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "wfe-engine.selectorLabels" -}}
app.kubernetes.io/name: {{ include "wfe-engine.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "wfe-engine.labels" -}}
{{ include "wfe-engine.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: controller
app.kubernetes.io/part-of: kubernaut
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "wfe-engine.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "wfe-engine.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "wfe-engine.rulesConfigMap" -}}
{{- default (printf "%s-rules" (include "wfe-engine.fullname" .)) .Values.rules.existingConfigMap -}}
{{- end -}}

{{/* The rules ConfigMap as NAMESPACE/NAME, for --rules-configmap. */}}
{{- define "wfe-engine.rulesConfigMapRef" -}}
{{ .Release.Namespace }}/{{ include "wfe-engine.rulesConfigMap" . }}
{{- end -}}

{{/* The pod securityContext: the value when set (even `{}`), else the default. */}}
{{- define "wfe-engine.podSecurityContext" -}}
{{- if kindIs "invalid" .Values.podSecurityContext -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- else -}}
{{- toYaml .Values.podSecurityContext -}}
{{- end -}}
{{- end -}}

{{/* The container securityContext: the value when set (even `{}`), else the default. */}}
{{- define "wfe-engine.securityContext" -}}
{{- if kindIs "invalid" .Values.securityContext -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- else -}}
{{- toYaml .Values.securityContext -}}
{{- end -}}
{{- end -}}

{{/* Combinations of values the schema cannot refuse on its own. */}}
{{- define "wfe-engine.validate" -}}
{{- if and (gt (int .Values.replicaCount) 1) (not .Values.leaderElection.enabled) }}
{{- fail (printf "replicaCount=%d needs leaderElection.enabled=true: without it every replica reconciles and starts executions" (int .Values.replicaCount)) }}
{{- end }}
{{- if and .Values.audit.url .Values.audit.file }}
{{- fail "audit.url and audit.file are exclusive; choose one destination" }}
{{- end }}
{{- if eq .Values.rules.shadow.configMap (include "wfe-engine.rulesConfigMap" .) }}
{{- fail (printf "rules.shadow.configMap=%s is the active rules ConfigMap: a candidate in shadow must be another ConfigMap" .Values.rules.shadow.configMap) }}
{{- end }}
{{- if and .Values.rules.existingConfigMap .Values.rules.extraFiles }}
{{- fail "rules.extraFiles merges into the ConfigMap the chart generates; with rules.existingConfigMap put the files into that ConfigMap instead" }}
{{- end }}
{{- end -}}

{{/* Whether to render a prometheus-operator object: enabled, and the cluster serves its kind or it is forced. */}}
{{- define "wfe-engine.monitoringKind" -}}
{{- $v := index .root.Values .value -}}
{{- if and $v.enabled (or $v.force (.root.Capabilities.APIVersions.Has (printf "monitoring.coreos.com/v1/%s" .kind))) -}}
true
{{- end -}}
{{- end -}}
