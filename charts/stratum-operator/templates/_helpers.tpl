{{- define "stratum-operator.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "stratum-operator.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "stratum-operator.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "stratum-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "stratum-operator.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- /* One of our images under the one registry: <registry>/<name>@<digest> when a digest
is set, else <registry>/<name>:<tag> (the tag defaults to the chart's appVersion).
Call with (dict "root" $ "image" .Values.image.proxy). */ -}}
{{- define "stratum-operator.image" -}}
{{- $images := .root.Values.image -}}
{{- $ref := printf "%s/%s" (trimSuffix "/" $images.registry) .image.name -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $ref .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $ref (default .root.Chart.AppVersion $images.tag) -}}
{{- end -}}
{{- end -}}
