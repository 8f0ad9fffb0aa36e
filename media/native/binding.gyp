{
  "targets": [
    {
      "target_name": "rtprelay_native",
      "sources": ["udp.c", "ng-route.c", "srtp.c"],
      "cflags": ["-O2", "-Wall", "-Wextra", "-Wno-unused-parameter"],
      "defines": ["NAPI_VERSION=8"]
    }
  ]
}
