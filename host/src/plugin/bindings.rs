//! The one `bindgen!`: the host side of the `weir:plugin` WIT package.
//! Everything else uses the types it generates, through [`super`]'s
//! re-exports; this file depends on nothing of weir's.

wasmtime::component::bindgen!({
    path: "../wit",
    inline: "
        package weir:host;
        world host {
            import weir:plugin/log@0.1.0;
            export weir:plugin/validator@0.1.0;
            export weir:plugin/transformer@0.1.0;
        }
    ",
    world: "weir:host/host",
    additional_derives: [PartialEq],
});
