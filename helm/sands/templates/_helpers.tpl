{{- define "sands.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "sands.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains (include "sands.name" .) .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name (include "sands.name" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sands.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
app.kubernetes.io/name: {{ include "sands.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/* Selector labels of one component: (list . "serving") */}}
{{- define "sands.selectorLabels" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: {{ include "sands.name" $root }}
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sands.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{- define "sands.configName" -}}{{ include "sands.fullname" . }}-config{{- end -}}

{{- define "sands.mlflowUri" -}}
{{- if .Values.mlflow.enabled -}}
{{- printf "http://%s-mlflow:%d" (include "sands.fullname" .) (int .Values.mlflow.port) -}}
{{- else -}}
{{- required "mlflow.externalUri is required when mlflow.enabled is false" .Values.mlflow.externalUri -}}
{{- end -}}
{{- end -}}

{{/* Environment every sands container gets: settings from the ConfigMap, object-store
     credentials and the Redis URL from Secrets. */}}
{{- define "sands.env" -}}
envFrom:
  - configMapRef:
      name: {{ include "sands.configName" . }}
  - secretRef:
      name: {{ .Values.secrets.objectStore.name }}
env:
  - name: SANDS_REDIS_URL
    valueFrom:
      secretKeyRef:
        name: {{ .Values.secrets.redis.name }}
        key: url
{{- end -}}

{{- define "sands.podSecurityContext" -}}
securityContext:
  {{- toYaml .Values.podSecurityContext | nindent 2 }}
{{- end -}}

{{- define "sands.containerSecurityContext" -}}
securityContext:
  {{- toYaml .Values.containerSecurityContext | nindent 2 }}
{{- end -}}
