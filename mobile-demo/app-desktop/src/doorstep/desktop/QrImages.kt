// 扫码加入 on the desktop: the head opens the QR image the dashboard offers for download (or a
// photo of the printed card) and ZXing reads it. On Android the camera scanner (ZXing's or ML
// Kit's) hands the same text to JoinViewModel.

package doorstep.desktop

import com.google.zxing.BinaryBitmap
import com.google.zxing.ChecksumException
import com.google.zxing.DecodeHintType
import com.google.zxing.FormatException
import com.google.zxing.NotFoundException
import com.google.zxing.client.j2se.BufferedImageLuminanceSource
import com.google.zxing.common.HybridBinarizer
import com.google.zxing.qrcode.QRCodeReader
import java.io.File
import javax.imageio.ImageIO

object QrImages {
    /** The text of the QR code in the image [file], or null when the file is no image or the
     *  image holds no readable QR code (the join screen then says so). */
    fun decode(file: File): String? {
        val image = ImageIO.read(file) ?: return null
        val bitmap = BinaryBitmap(HybridBinarizer(BufferedImageLuminanceSource(image)))
        return try {
            QRCodeReader().decode(bitmap, mapOf(DecodeHintType.TRY_HARDER to true)).text
        } catch (e: NotFoundException) {
            null
        } catch (e: ChecksumException) {
            null
        } catch (e: FormatException) {
            null
        }
    }
}
