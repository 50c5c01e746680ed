# latlab's server in an image of nothing but the static binary.
#
#   CGO_ENABLED=0 go build -trimpath -o latlab ./cmd/latlab
#   docker build -t latlab .
#   docker run --rm -p 7707:7707/tcp -p 7707:7707/udp latlab
#
# The binary must be static (CGO_ENABLED=0): scratch has no C library.
# `latlab docker lab` does not need this file: it imports an image of its
# own binary through the Engine API (docs/docker.md).
FROM scratch
COPY latlab /latlab
EXPOSE 7707/tcp 7707/udp
ENTRYPOINT ["/latlab", "serve"]
