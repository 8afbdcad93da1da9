{{/* The image of one service: <registry>/<repositoryPrefix>/<name>:<tag>. */}}
{{- define "tollgate.image" -}}
{{- $image := .root.Values.image -}}
{{- $repository := printf "%s/%s" $image.repositoryPrefix .name -}}
{{- if $image.registry }}{{ $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $repository }}{{ end -}}
{{- printf "%s:%s" $repository (toString $image.tag) -}}
{{- end -}}
