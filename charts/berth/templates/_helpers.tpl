{{/*
Names. The Service is named after berth.fullname, so the serving certificate's SAN
is "<fullname>.<namespace>.svc" — the name the apiserver dials (SNI).
*/}}
{{- define "berth.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.fullname" -}}
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

{{- define "berth.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.provisionerName" -}}
{{- printf "%s-provisioner" (include "berth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "berth.tlsSecretName" -}}
{{- printf "%s-tls" (include "berth.fullname" .) }}
{{- end }}

{{- define "berth.serviceDNSNames" -}}
{{- $svc := include "berth.fullname" . }}
- {{ printf "%s.%s.svc" $svc .Release.Namespace }}
- {{ printf "%s.%s.svc.cluster.local" $svc .Release.Namespace }}
{{- end }}

{{- define "berth.servingCertificateName" -}}
{{- printf "%s-serving" (include "berth.fullname" .) }}
{{- end }}

{{/*
Labels. Call with (dict "ctx" $ "component" "webhook").
*/}}
{{- define "berth.labels" -}}
helm.sh/chart: {{ include "berth.chart" .ctx }}
{{ include "berth.selectorLabels" . }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service }}
app.kubernetes.io/part-of: berth
{{- with .ctx.Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "berth.selectorLabels" -}}
app.kubernetes.io/name: {{ include "berth.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "berth.image" -}}
{{- $tag := default .Chart.AppVersion .Values.image.tag }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" .Values.image.repository $tag }}
{{- end }}
{{- end }}

{{/*
Namespaces Berth never mutates: the ones Berth always exempts, its own (deadlock and
self-mutation), and the user's. Used by both the rendered config and the namespaceSelector,
so the apiserver does not even call Berth for them. Returns a JSON list.
*/}}
{{- define "berth.exemptNamespaces" -}}
{{- $ns := list "kube-system" "kube-public" "kube-node-lease" .Release.Namespace }}
{{- $ns = concat $ns (.Values.config.webhook.exemptNamespaces | default list) }}
{{- $ns | uniq | toJson }}
{{- end }}

{{/*
The config file's webhook section: the user's values, with the release namespace always added
to exemptNamespaces (Berth must never mutate itself).
*/}}
{{- define "berth.configWebhook" -}}
{{- $webhook := deepCopy .Values.config.webhook }}
{{- $user := .Values.config.webhook.exemptNamespaces | default list }}
{{- $_ := set $webhook "exemptNamespaces" (append $user .Release.Namespace | uniq) }}
{{- toYaml $webhook }}
{{- end }}

{{/*
Pod security shared by both Deployments.
*/}}
{{- define "berth.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
fsGroup: 65532
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "berth.containerSecurityContext" -}}
runAsNonRoot: true
runAsUser: 65532
runAsGroup: 65532
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: ["ALL"]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/*
Spread replicas over nodes: a topology spread on hostname (ScheduleAnyway by default, see
values.yaml) plus a soft pod anti-affinity. Call with (dict "ctx" $ "component" "webhook"
"values" .Values.webhook).
*/}}
{{- define "berth.podScheduling" -}}
{{- $v := .values }}
topologySpreadConstraints:
  - maxSkew: 1
    topologyKey: kubernetes.io/hostname
    whenUnsatisfiable: {{ $v.topologySpread.whenUnsatisfiable }}
    labelSelector:
      matchLabels:
        {{- include "berth.selectorLabels" . | nindent 8 }}
affinity:
  {{- with $v.affinity }}
  {{- toYaml . | nindent 2 }}
  {{- else }}
  podAntiAffinity:
    preferredDuringSchedulingIgnoredDuringExecution:
      - weight: 100
        podAffinityTerm:
          topologyKey: kubernetes.io/hostname
          labelSelector:
            matchLabels:
              {{- include "berth.selectorLabels" . | nindent 14 }}
  {{- end }}
{{- with $v.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $v.priorityClassName }}
priorityClassName: {{ . }}
{{- end }}
{{- end }}

{{/*
The generated CA and serving certificate (certManager.enabled=false). Computed once per render
and cached on the root context, so the Secret and the webhook's caBundle share one CA. On
upgrade the existing Secret is looked up and its ca.crt/tls.crt/tls.key reused, so the CA
survives upgrades (`helm template` has no cluster: lookup returns nothing and a fresh CA is
generated, as expected). Values are base64, as in a Secret's data.
*/}}
{{- define "berth.tlsEnsure" -}}
{{- if not (hasKey . "berthTLS") }}
{{- $existing := lookup "v1" "Secret" .Release.Namespace (include "berth.tlsSecretName" .) }}
{{- $data := dig "data" dict ($existing | default dict) }}
{{- if and (get $data "ca.crt") (get $data "tls.crt") (get $data "tls.key") }}
{{- $_ := set . "berthTLS" (dict "ca" (get $data "ca.crt") "crt" (get $data "tls.crt") "key" (get $data "tls.key")) }}
{{- else }}
{{- $dns := include "berth.serviceDNSNames" . | fromYamlArray }}
{{- $ca := genCA (printf "%s-ca" (include "berth.fullname" .)) (int .Values.tls.validityDays) }}
{{- $cert := genSignedCert (first $dns) nil $dns (int .Values.tls.validityDays) $ca }}
{{- $_ := set . "berthTLS" (dict "ca" ($ca.Cert | b64enc) "crt" ($cert.Cert | b64enc) "key" ($cert.Key | b64enc)) }}
{{- end }}
{{- end }}
{{- end }}

{{/* The webhook's config file (BerthConfig). */}}
{{- define "berth.configFile" -}}
apiVersion: berth.dev/v1alpha1
kind: BerthConfig
webhook:
  {{- include "berth.configWebhook" . | nindent 2 }}
{{- end }}

{{/*
The provisioner's config file: the same webhook section (it taints and labels the GPU nodes it
launches with gpuTaints/gpuNodeLabel) plus the provisioner section. Kept in its own ConfigMap so
the webhook's strictly validated config never carries a section it does not need.
*/}}
{{- define "berth.provisionerConfigFile" -}}
{{ include "berth.configFile" . }}
provisioner:
  clusterName: {{ .Values.provisioner.clusterName | default .Release.Name | quote }}
  {{- with .Values.provisioner.config }}
  {{- toYaml . | nindent 2 }}
  {{- end }}
  {{- with include "berth.warmConfig" . }}
  warm: {{ . }}
  {{- end }}
{{- end }}

{{/*
Warm GPU capacity (provisioner.warm): off unless mode is schedule or auto. `mode: off` unquoted is
YAML's false: read as off. Rendered as JSON (valid YAML) so every string stays quoted: an unquoted
19:00 would be read as the base-60 number 1140. imagePuller tells Berth the pre-pull DaemonSet runs.
*/}}
{{- define "berth.warmMode" -}}
{{- $mode := .Values.provisioner.warm.mode }}
{{- if kindIs "bool" $mode }}off{{ else }}{{ $mode | default "off" }}{{ end }}
{{- end }}

{{- define "berth.warmConfig" -}}
{{- if hasKey (.Values.provisioner.config | default dict) "warm" }}
{{- fail "provisioner.config.warm: set warm capacity in provisioner.warm (the chart renders it and its image puller)" }}
{{- end }}
{{- $w := .Values.provisioner.warm }}
{{- $mode := include "berth.warmMode" . }}
{{- if ne $mode "off" }}
{{- $out := dict "mode" $mode "imagePuller" (eq (include "berth.imagePullerEnabled" .) "true") }}
{{- with $w.targetTimeToGPU }}{{ $_ := set $out "targetTimeToGPU" . }}{{ end }}
{{- with $w.volumeSizeGiB }}{{ $_ := set $out "volumeSizeGiB" . }}{{ end }}
{{- with $w.schedules }}{{ $_ := set $out "schedules" . }}{{ end }}
{{- toJson $out }}
{{- end }}
{{- end }}

{{/* The pre-pull DaemonSet runs when the provisioner does, warm capacity is on and images are listed. */}}
{{- define "berth.imagePullerEnabled" -}}
{{- and .Values.provisioner.enabled (ne (include "berth.warmMode" .) "off") (gt (len (.Values.provisioner.warm.images | default list)) 0) }}
{{- end }}

{{- define "berth.imagePullerName" -}}
{{- printf "%s-image-puller" (include "berth.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
The image puller's tolerations: the GPU taints (config.webhook.gpuTaints), every taint of the
configured pools (provisioner.config.pools[].taints), Berth's warm nodes (berth.dev/warm=true
or =stopped, NoSchedule: Exists) and imagePuller.extraTolerations; one per key and effect.
*/}}
{{- define "berth.imagePullerTolerations" -}}
{{- $seen := dict }}
{{- $out := list }}
{{- $taints := concat (.Values.config.webhook.gpuTaints | default list) (list (dict "key" "berth.dev/warm" "effect" "NoSchedule")) }}
{{- range (dig "pools" list (.Values.provisioner.config | default dict)) }}
{{- $taints = concat $taints (.taints | default list) }}
{{- end }}
{{- range $taints }}
{{- $id := printf "%s:%s" .key (.effect | default "") }}
{{- if not (hasKey $seen $id) }}
{{- $_ := set $seen $id true }}
{{- $t := dict "key" .key "operator" "Exists" }}
{{- with .effect }}{{ $_ := set $t "effect" . }}{{ end }}
{{- $out = append $out $t }}
{{- end }}
{{- end }}
{{- $out = concat $out (.Values.provisioner.warm.imagePuller.extraTolerations | default list) }}
{{- toYaml $out }}
{{- end }}
