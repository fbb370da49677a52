package weir.bench.streams;

import com.networknt.schema.Error;
import com.networknt.schema.Schema;
import com.networknt.schema.SchemaRegistry;
import com.networknt.schema.SpecificationVersion;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Branched;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Produced;
import tools.jackson.core.JacksonException;
import tools.jackson.databind.JsonNode;
import tools.jackson.databind.ObjectMapper;

/**
 * weir's JSON-schema validator (plugins/rust/json-schema) as a Kafka Streams
 * application: a record whose value is JSON that conforms to the schema goes
 * to the output topic, any other (null, not JSON, breaking the schema) to the
 * dead-letter topic. Keys, headers and timestamps are carried through, as
 * Kafka Streams does by default; unlike weir, a dead letter carries no header
 * naming the reason.
 *
 * <p>Everything else is Kafka Streams' defaults, as a Kafka shop would start:
 * one stream thread (--threads to change it), the default commit interval of
 * its guarantee (30 s at-least-once, 100 ms exactly-once) and the client
 * defaults Kafka Streams sets. SIGTERM closes the application (a last commit)
 * and exits 0.
 *
 * <pre>
 * java -jar weir-bench-streams.jar --bootstrap HOST:PORT --input T --output T \
 *     --dead-letter T --group G --schema FILE [--guarantee at_least_once|exactly_once_v2] [--threads N]
 * </pre>
 */
public final class Validate {
    private Validate() {}

    public static void main(String[] argv) throws Exception {
        Args args = Args.parse(argv);
        ObjectMapper json = new ObjectMapper();
        Schema schema =
                SchemaRegistry.withDefaultDialect(SpecificationVersion.DRAFT_2020_12)
                        .getSchema(Files.readString(Path.of(args.schema)));

        StreamsBuilder builder = new StreamsBuilder();
        builder.stream(args.input, Consumed.with(Serdes.ByteArray(), Serdes.ByteArray()))
                .split()
                .branch(
                        (key, value) -> valid(json, schema, value),
                        Branched.withConsumer(
                                valid ->
                                        valid.to(
                                                args.output,
                                                Produced.with(
                                                        Serdes.ByteArray(), Serdes.ByteArray()))))
                .defaultBranch(
                        Branched.withConsumer(
                                invalid ->
                                        invalid.to(
                                                args.deadLetter,
                                                Produced.with(
                                                        Serdes.ByteArray(), Serdes.ByteArray()))));

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, args.group);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, args.bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, args.guarantee);
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, args.threads);
        props.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        // No state stores, but Kafka Streams locks a state folder per application.
        Path state = Files.createTempDirectory("weir-bench-streams-");
        props.put(StreamsConfig.STATE_DIR_CONFIG, state.toString());

        KafkaStreams streams = new KafkaStreams(builder.build(), props);
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime()
                .addShutdownHook(
                        new Thread(
                                () -> {
                                    streams.close();
                                    streams.cleanUp();
                                    state.toFile().delete();
                                    closed.countDown();
                                    // Closed cleanly: exit 0, not the JVM's 143 for SIGTERM.
                                    Runtime.getRuntime().halt(0);
                                },
                                "shutdown"));
        streams.setUncaughtExceptionHandler(
                e -> {
                    System.err.println("error: " + e);
                    return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler
                            .StreamThreadExceptionResponse.SHUTDOWN_APPLICATION;
                });
        streams.setStateListener(
                (now, before) -> {
                    if (now == KafkaStreams.State.ERROR) {
                        System.exit(1);
                    }
                });
        streams.start();
        closed.await();
    }

    /** Whether `value` is JSON that conforms to `schema`. */
    static boolean valid(ObjectMapper json, Schema schema, byte[] value) {
        if (value == null) {
            return false;
        }
        JsonNode node;
        try {
            node = json.readTree(value);
        } catch (JacksonException e) {
            return false;
        }
        List<Error> problems = schema.validate(node);
        return problems.isEmpty();
    }

    private record Args(
            String bootstrap,
            String input,
            String output,
            String deadLetter,
            String group,
            String schema,
            String guarantee,
            int threads) {
        static Args parse(String[] argv) {
            String bootstrap = null;
            String input = null;
            String output = null;
            String deadLetter = null;
            String group = null;
            String schema = null;
            String guarantee = StreamsConfig.AT_LEAST_ONCE;
            int threads = 1;
            for (int i = 0; i + 1 < argv.length; i += 2) {
                String value = argv[i + 1];
                switch (argv[i]) {
                    case "--bootstrap" -> bootstrap = value;
                    case "--input" -> input = value;
                    case "--output" -> output = value;
                    case "--dead-letter" -> deadLetter = value;
                    case "--group" -> group = value;
                    case "--schema" -> schema = value;
                    case "--guarantee" -> guarantee = value;
                    case "--threads" -> threads = Integer.parseInt(value);
                    default -> throw usage("unknown argument " + argv[i]);
                }
            }
            if (argv.length % 2 != 0) {
                throw usage(argv[argv.length - 1] + " has no value");
            }
            if (bootstrap == null || input == null || output == null || deadLetter == null
                    || group == null || schema == null) {
                throw usage("--bootstrap, --input, --output, --dead-letter, --group and --schema are needed");
            }
            if (!guarantee.equals(StreamsConfig.AT_LEAST_ONCE)
                    && !guarantee.equals(StreamsConfig.EXACTLY_ONCE_V2)) {
                throw usage("--guarantee is at_least_once or exactly_once_v2, not " + guarantee);
            }
            return new Args(bootstrap, input, output, deadLetter, group, schema, guarantee, threads);
        }

        static IllegalArgumentException usage(String why) {
            return new IllegalArgumentException(
                    why
                            + "\nusage: --bootstrap HOST:PORT --input T --output T --dead-letter T"
                            + " --group G --schema FILE [--guarantee at_least_once|exactly_once_v2]"
                            + " [--threads N]");
        }
    }
}
