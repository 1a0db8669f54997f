{{/* Names and labels. */}}
{{- define "apim-gateway.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "apim-gateway.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/* Object names derived from the fullname; suffixed names stay within 63 characters. */}}
{{- define "apim-gateway.name.suffixed" -}}
{{- $base := include "apim-gateway.fullname" .root | trunc (int (sub 62 (len .suffix))) | trimSuffix "-" -}}
{{- printf "%s-%s" $base .suffix -}}
{{- end -}}

{{- define "apim-gateway.selectorLabels" -}}
app.kubernetes.io/name: {{ include "apim-gateway.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "apim-gateway.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "apim-gateway.selectorLabels" . }}
app.kubernetes.io/component: self-hosted-gateway
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
apim-gateway.lookup: the value at a dotted path of .Values, as JSON {"v": value}.
Arc puts --configuration-settings a.b.c=v at .Values.a.b.c.
*/}}
{{- define "apim-gateway.lookup" -}}
{{- $v := .root.Values -}}
{{- range $p := splitList "." .key -}}
{{- if kindIs "map" $v -}}
{{- $v = index $v $p -}}
{{- else -}}
{{- $v = "" -}}
{{- end -}}
{{- end -}}
{{- dict "v" $v | toJson -}}
{{- end -}}

{{/* apim-gateway.isSet: "true" unless the value is null, "" or an empty object or list. */}}
{{- define "apim-gateway.isSet" -}}
{{- $v := .v -}}
{{- if not (or (kindIs "invalid" $v) (and (kindIs "string" $v) (eq $v "")) (and (or (kindIs "map" $v) (kindIs "slice" $v)) (eq (len $v) 0))) -}}true{{- end -}}
{{- end -}}

{{/* apim-gateway.text: a value as the agent reads it from a file: strings as they are, objects and lists as JSON. */}}
{{- define "apim-gateway.text" -}}
{{- $v := .v -}}
{{- if kindIs "string" $v -}}
{{- $v -}}
{{- else if or (kindIs "map" $v) (kindIs "slice" $v) -}}
{{- toJson $v -}}
{{- else if kindIs "float64" $v -}}
{{- if eq (floor $v) $v -}}{{- int64 $v -}}{{- else -}}{{- toString $v -}}{{- end -}}
{{- else -}}
{{- toString $v -}}
{{- end -}}
{{- end -}}

{{/*
apim-gateway.settings resolves every setting of the catalog (generated from
schemas/extension-settings.schema.json) and returns JSON:
  plain      non-secret settings as set (ConfigMap, one key each)
  protected  protected settings as set (the Secret only; never anywhere else)
  effective  plain settings with schema defaults filled in (what templates read)
  restart    the plain and protected settings whose change must roll the pods
  aliases    official-chart spellings that were used
*/}}
{{- define "apim-gateway.settings" -}}
{{- $root := . -}}
{{- $cat := include "apim-gateway.catalog" . | fromJson -}}
{{- $plain := dict -}}
{{- $prot := dict -}}
{{- $eff := dict -}}
{{- $restart := dict -}}
{{- $aliases := list -}}
{{- range $e := $cat.settings -}}
{{- $v := (include "apim-gateway.lookup" (dict "root" $root "key" $e.key) | fromJson).v -}}
{{- $set := include "apim-gateway.isSet" (dict "v" $v) -}}
{{- $def := "" -}}
{{- if hasKey $e "default" -}}{{- $def = include "apim-gateway.text" (dict "v" $e.default) -}}{{- end -}}
{{- range $a := (default list $e.aliases) -}}
{{- $av := (include "apim-gateway.lookup" (dict "root" $root "key" $a) | fromJson).v -}}
{{- if include "apim-gateway.isSet" (dict "v" $av) -}}
{{- if and $set (ne (include "apim-gateway.text" (dict "v" $v)) $def) (ne (include "apim-gateway.text" (dict "v" $v)) (include "apim-gateway.text" (dict "v" $av))) -}}
{{- fail (printf "%s is set twice, as %s and as its alias %s (the official Helm chart's spelling); set only %s" $e.key $e.key $a $e.key) -}}
{{- end -}}
{{- $v = $av -}}
{{- $set = "true" -}}
{{- $aliases = append $aliases (printf "%s (use %s)" $a $e.key) -}}
{{- end -}}
{{- end -}}
{{- if $set -}}
{{- $text := include "apim-gateway.text" (dict "v" $v) -}}
{{- if $e.protected -}}
{{- $_ := set $prot $e.key $text -}}
{{- else -}}
{{- $_ := set $plain $e.key $text -}}
{{- $_ := set $eff $e.key $text -}}
{{- end -}}
{{- if $e.restart -}}{{- $_ := set $restart $e.key $text -}}{{- end -}}
{{- else if and (hasKey $e "default") (not $e.protected) -}}
{{- $_ := set $eff $e.key $def -}}
{{- end -}}
{{- end -}}
{{- range $k := $cat.agent -}}
{{- $v := (include "apim-gateway.lookup" (dict "root" $root "key" $k) | fromJson).v -}}
{{- if include "apim-gateway.isSet" (dict "v" $v) -}}
{{- $text := include "apim-gateway.text" (dict "v" $v) -}}
{{- $_ := set $plain $k $text -}}
{{- $_ := set $eff $k $text -}}
{{- $_ := set $restart $k $text -}}
{{- end -}}
{{- end -}}
{{- dict "plain" $plain "protected" $prot "effective" $eff "restart" $restart "aliases" $aliases | toJson -}}
{{- end -}}

{{/* apim-gateway.object: an object or list setting (Arc passes it as JSON or YAML text). Returns JSON {"v": value}. */}}
{{- define "apim-gateway.object" -}}
{{- $t := get .s.effective .key -}}
{{- $v := dict -}}
{{- if $t -}}
{{- if hasPrefix "[" (trim $t) -}}
{{- $v = fromYamlArray $t -}}
{{- else -}}
{{- $v = fromYaml $t -}}
{{- if hasKey $v "Error" -}}{{- fail (printf "%s: not a JSON or YAML object" .key) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- dict "v" $v | toJson -}}
{{- end -}}

{{/* apim-gateway.bool: "true" when the setting is true (as a boolean or as Arc's text). */}}
{{- define "apim-gateway.bool" -}}
{{- if eq (lower (toString (get .s.effective .key))) "true" -}}true{{- end -}}
{{- end -}}

{{/* apim-gateway.value: a chart-only value at a dotted path, or "" when unset. */}}
{{- define "apim-gateway.value" -}}
{{- $v := (include "apim-gateway.lookup" (dict "root" .root "key" .key) | fromJson).v -}}
{{- if include "apim-gateway.isSet" (dict "v" $v) -}}{{- include "apim-gateway.text" (dict "v" $v) -}}{{- end -}}
{{- end -}}

{{/* apim-gateway.proxy: the proxy settings Arc injects, as JSON; enabled is "true" when any is in force. */}}
{{- define "apim-gateway.proxy" -}}
{{- $p := default dict (default dict .Values.Azure).proxySettings -}}
{{- $enabled := or (eq (lower (toString $p.isProxyEnabled)) "true") $p.httpProxy $p.httpsProxy $p.proxyCert -}}
{{- dict "enabled" (ternary "true" "" (not (not $enabled))) "http" (default "" $p.httpProxy) "https" (default "" $p.httpsProxy) "no" (default "" $p.noProxy) "cert" (default "" $p.proxyCert) | toJson -}}
{{- end -}}

{{/* apim-gateway.validate fails with a message naming the setting for what the values schema cannot express. */}}
{{- define "apim-gateway.validate" -}}
{{- $s := include "apim-gateway.settings" . | fromJson -}}
{{- $e := $s.effective -}}
{{- $uri := get $e "gateway.configuration.uri" -}}
{{- if not $uri -}}
{{- fail "gateway.configuration.uri is required: the configuration endpoint of the gateway (portal: Gateways > Deployment), e.g. --configuration-settings gateway.configuration.uri=https://<service>.configuration.azure-api.net" -}}
{{- end -}}
{{- if not (regexMatch "^(https?|file)://\\S+$" $uri) -}}
{{- fail (printf "gateway.configuration.uri must be an https://, http:// or file:// URL, got %q" $uri) -}}
{{- end -}}
{{- $st := get $e "service.type" -}}
{{- if not (has $st (list "LoadBalancer" "NodePort" "ClusterIP")) -}}
{{- fail (printf "service.type must be LoadBalancer, NodePort or ClusterIP, got %q" $st) -}}
{{- end -}}
{{- range $k := list "service.http.nodePort" "service.https.nodePort" -}}
{{- if and (get $e $k) (eq $st "ClusterIP") -}}
{{- fail (printf "%s needs service.type NodePort or LoadBalancer (service.type is ClusterIP)" $k) -}}
{{- end -}}
{{- end -}}
{{- $auth := get $e "gateway.auth.type" -}}
{{- if not (has $auth (list "GatewayToken" "AzureAdApp" "WorkloadIdentity" "ExtensionIdentity")) -}}
{{- fail (printf "gateway.auth.type must be GatewayToken, AzureAdApp, WorkloadIdentity or ExtensionIdentity, got %q" $auth) -}}
{{- end -}}
{{- if and (eq $auth "GatewayToken") (regexMatch "^https?://" $uri) (not (hasKey $s.protected "gateway.auth.token")) -}}
{{- fail "gateway.auth.token is required with gateway.auth.type GatewayToken: pass it with --config-protected-settings gateway.auth.token=<token> (portal: Gateways > Deployment)" -}}
{{- end -}}
{{- if and (ne $auth "GatewayToken") (not (get $e "gateway.name")) -}}
{{- fail (printf "gateway.name is required with gateway.auth.type %s: the name of the gateway resource in API Management" $auth) -}}
{{- end -}}
{{- if eq $auth "AzureAdApp" -}}
{{- range $k := list "gateway.auth.azureAd.tenant.id" "gateway.auth.azureAd.app.id" -}}
{{- if not (get $e $k) -}}{{- fail (printf "%s is required with gateway.auth.type AzureAdApp" $k) -}}{{- end -}}
{{- end -}}
{{- if not (or (hasKey $s.protected "gateway.auth.azureAd.app.secret") (hasKey $s.protected "gateway.auth.azureAd.app.certificate")) -}}
{{- fail "gateway.auth.azureAd.app.secret or gateway.auth.azureAd.app.certificate is required with gateway.auth.type AzureAdApp: pass it with --config-protected-settings" -}}
{{- end -}}
{{- end -}}
{{- if and (eq $auth "WorkloadIdentity") (not (get $e "gateway.auth.azureAd.app.id")) -}}
{{- fail "gateway.auth.azureAd.app.id is required with gateway.auth.type WorkloadIdentity: the client id of the federated identity" -}}
{{- end -}}
{{- if and (include "apim-gateway.bool" (dict "s" $s "key" "gateway.auth.rotation.enabled")) (not (get $e "gateway.resourceId")) -}}
{{- fail "gateway.resourceId is required with gateway.auth.rotation.enabled: the ARM id of the gateway resource" -}}
{{- end -}}
{{- if and (hasKey $s.protected "monitoring.ingestionKey") (not (get $e "monitoring.workspaceId")) -}}
{{- fail "monitoring.workspaceId is required with monitoring.ingestionKey" -}}
{{- end -}}
{{- end -}}

{{/* apim-gateway.port: a probe port, by number or by name. */}}
{{- define "apim-gateway.port" -}}
{{- if regexMatch "^[0-9]+$" (toString .) -}}{{- . -}}{{- else -}}{{- . | quote -}}{{- end -}}
{{- end -}}

{{/*
apim-gateway.proxyEnv: env entries for the proxy Arc injects. The values come
from the proxy Secret. With a proxy CA, Go reads the system bundle
(SSL_CERT_FILE) and every file in SSL_CERT_DIR, so the proxy CA is trusted
besides, not instead of, the public roots.
*/}}
{{- define "apim-gateway.proxyEnv" -}}
{{- $p := .p -}}
{{- if $p.enabled -}}
{{- $name := include "apim-gateway.name.suffixed" (dict "root" .root "suffix" "proxy") -}}
{{- range $pair := list (list "HTTP_PROXY" $p.http) (list "http_proxy" $p.http) (list "HTTPS_PROXY" $p.https) (list "https_proxy" $p.https) (list "NO_PROXY" $p.no) (list "no_proxy" $p.no) }}
{{- if index $pair 1 }}
- name: {{ index $pair 0 }}
  valueFrom:
    secretKeyRef:
      name: {{ $name }}
      key: {{ index $pair 0 }}
{{- end }}
{{- end }}
{{- if $p.cert }}
- name: SSL_CERT_FILE
  value: /etc/ssl/certs/ca-certificates.crt
- name: SSL_CERT_DIR
  value: /apim/proxy-ca
{{- end }}
{{- end -}}
{{- end -}}
