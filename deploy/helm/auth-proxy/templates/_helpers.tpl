{{/* Names and labels. */}}
{{- define "auth-proxy.name" -}}
{{- .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "auth-proxy.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "auth-proxy.selectorLabels" -}}
app.kubernetes.io/name: {{ include "auth-proxy.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "auth-proxy.labels" -}}
{{ include "auth-proxy.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "auth-proxy.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}
{{- end -}}

{{- define "auth-proxy.secretsDir" -}}/etc/auth-proxy/secrets{{- end -}}

{{/*
The proxy's configuration: values.config with what the chart owns set over it (listen address,
secret files, the Redis store, and the sidecar's upstream).
*/}}
{{- define "auth-proxy.config" -}}
{{- $cfg := deepCopy (.Values.config | default dict) -}}
{{- $server := get $cfg "server" | default dict -}}
{{- if and (get $server "trust_forwarded_headers") (get $server "trusted_proxies") -}}
{{- fail "config.server.trust_forwarded_headers is deprecated and the proxy refuses it next to config.server.trusted_proxies (set by default): list your ingress controller's addresses in trusted_proxies instead (or set trusted_proxies to null to keep the old key)" -}}
{{- end -}}
{{- $_ := set $server "listen" (printf "0.0.0.0:%d" (int .Values.containerPort)) -}}
{{- $_ = set $cfg "server" $server -}}
{{- $provider := get $cfg "provider" | default dict -}}
{{- $_ = unset $provider "client_secret" -}}
{{- $_ = set $provider "client_secret_file" (printf "%s/%s" (include "auth-proxy.secretsDir" .) .Values.secrets.clientSecretKey) -}}
{{- $_ = set $cfg "provider" $provider -}}
{{- $cookie := get $cfg "cookie" | default dict -}}
{{- $_ = unset $cookie "secret" -}}
{{- $_ = set $cookie "secret_file" (printf "%s/%s" (include "auth-proxy.secretsDir" .) .Values.secrets.cookieSecretKey) -}}
{{- $_ = set $cfg "cookie" $cookie -}}
{{- $session := get $cfg "session" | default dict -}}
{{- $_ = set $session "store" "redis" -}}
{{- $_ = set $session "redis_url" .Values.redis.url -}}
{{- $_ = set $cfg "session" $session -}}
{{- if and (eq .Values.mode "sidecar") (not (get $cfg "upstreams")) -}}
{{- $_ = set $cfg "upstreams" (list (dict "prefix" "/" "url" (printf "http://127.0.0.1:%d" (int .Values.sidecar.app.port)))) -}}
{{- end -}}
{{- if not (get $cfg "upstreams") -}}
{{- $_ = unset $cfg "upstreams" -}}
{{- end -}}
{{- toYaml $cfg -}}
{{- end -}}
