// Package layer reads, merges, writes and extracts container image layers:
// the tar streams of an image's filesystem changesets, as the OCI image
// specification defines them.
//
//   - [Walk] reads one uncompressed layer stream once and hands each entry,
//     checked and with its name normalized, to a callback that may read the
//     entry's content. It is the single reader every other function (and the
//     scanner's analyzers) build on, so every layer is checked the same way:
//     hostile names, links that escape, writes through symlinks, duplicates,
//     device nodes, truncation. It never panics, never buffers content, and
//     its memory grows only with the number of paths in the layer.
//   - [Export] merges a stack of layers into the root filesystem the
//     kernel's overlayfs would show, as one tar stream, reading each layer
//     once from the top down.
//   - [Extract] writes a tar stream into a directory through an os.Root, so
//     nothing outside the directory is touched; with [ApplyWhiteouts] it
//     applies a layer on top of the layers extracted before it.
//   - [FromDir] writes a directory tree as a deterministic layer tar.
//   - [Decompress] and [Compress] read and write gzip and zstd layer blobs.
//
// Errors name what went wrong where: an [*Error] carries the layer's display
// name (from [WithName] or [Source.Name]) and the entry's name as stored, and
// wraps an [errdefs] class (ErrInvalidArgument for a hostile or malformed
// layer, ErrCorrupt for a truncated one, ErrTooLarge for a size limit).
//
// Whiteouts follow the OCI image specification: an entry ".wh.NAME" removes
// NAME, and everything below it, from the layers below its own; an entry
// ".wh..wh..opq" removes everything below its directory that the layers below
// hold; other names starting with ".wh..wh." are aufs metadata and are
// ignored. Neither kind of whiteout affects the layer it is in.
package layer
