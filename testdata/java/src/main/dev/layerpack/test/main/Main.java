package dev.layerpack.test.main;

/** The load test: run with java -cp 'java/lib/*' against an unzipped layer. */
public final class Main {
    public static void main(String[] args) throws Exception {
        System.out.println(dev.layerpack.test.app.App.describe());
        for (String c : new String[] {"dev.layerpack.test.testonly.TestOnly", "dev.layerpack.test.provided.Provided"}) {
            try {
                Class.forName(c);
                System.out.println(c + " is on the classpath");
            } catch (ClassNotFoundException e) {
                // expected
            }
        }
        if (args.length > 0 && args[0].equals("native")) {
            String lib = dev.layerpack.test.nat.Native.library();
            System.out.println(lib + " " + (Main.class.getClassLoader().getResource(lib) != null));
        }
    }
}
