package dev.layerpack.test.nat;

/** Names the native library its jar carries; each classifier has one CPU's build. */
public final class Native {
    private Native() {}

    public static String library() {
        return "native/libhello.so";
    }
}
