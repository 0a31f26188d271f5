// Package filter will process decoded media: an FFmpeg filter-graph element,
// image and text overlays, face detection, QR and barcode detection, audio
// level and active speaker, and the many-input hubs (Composite, AudioMixer,
// AlphaBlending, Dispatcher, DispatcherOneToMany) with a request pad per
// participant.
//
// Not implemented yet in this release: the package is empty, and no issue
// has been filed for it yet. Filters need decoded frames, which come with
// package codec (issue 3).
package filter
