package dev.layerpack.test.core;

/** A transitive dependency: lp-app needs it, the layer's pom does not name it. */
public final class Core {
    private Core() {}

    public static String greet(String who) {
        return "hello from core, " + who;
    }
}
