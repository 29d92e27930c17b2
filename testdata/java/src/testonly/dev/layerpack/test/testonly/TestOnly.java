package dev.layerpack.test.testonly;

/** Test scope only: must never be in a layer. */
public final class TestOnly {
    private TestOnly() {}
}
