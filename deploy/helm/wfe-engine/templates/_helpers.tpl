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
