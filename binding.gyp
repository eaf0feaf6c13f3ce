{
  "targets": [
    {
      "target_name": "cellmap_remap",
      "sources": ["native/remap.c"],
      "conditions": [["OS!='linux'", { "type": "none" }]]
    }
  ]
}
